"""Run the unit a Dataset record names, on the series and config its ref points at, and build its Prediction
record. Runs in a pool process of the predictor, or in the ingestion for a request it answers in place (in its
pool, or on its thread: timex_stream.runtime.fast_lane); the service reads the series
(timex_stream.runtime.series_store) before."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forecasting.config import config_from_json
from forecasting.dispatch import run
from forecasting.historical_multivariate import STEPS_COLUMN
from forecasting.regressors import align
from forecasting.selection import final_refit, refits_needed
from forecasting.units import UnitResult, UnitSpec
from schemas.records import DatasetRecord, PredictionRecord, UnitOutcomeRecord, UnitRecord
from timex_stream.runtime.records import prediction, unit_outcome, unit_record
from timex_stream.runtime.series_store import SeriesMissingError, SeriesStore


@dataclass(frozen=True)
class Job:
    """A Dataset with what its ref points at."""

    dataset: DatasetRecord
    series: pd.Series
    config_json: str
    # the regressors' values on the series' index and the horizon (units whose spec names regressors)
    regressors: pd.DataFrame | None = None
    # the regressors' stored values, step forecasts too: what a multivariate historical step makes its own from
    columns: dict[str, pd.Series] | None = None


def job_for(store: SeriesStore, dataset: DatasetRecord) -> Job | PredictionRecord:
    """The unit with the series and config its ref points at, or its Prediction with the error if they
    cannot be read (blocking: the service calls it in a thread)."""
    ref = dataset["ref"]
    if ref is None:
        return prediction_record(dataset, error="this unit was written before units pointed at their series "
                                                "(a Dataset v1 record): its data cannot be read; submit again")
    try:
        series, config_json = store.series_and_config(ref, dataset["series"])
    except (SeriesMissingError, ValueError) as exc:
        return prediction_record(dataset, error=f"the series of this unit cannot be read: {exc}")
    if not ref.get("regressors"):
        return Job(dataset, series, config_json)
    try:
        horizon = config_from_json(config_json).model_parameters.prediction_lags
        columns = store.regressors(ref)
        # A regressor's step forecasts (forecasting.historical_multivariate) cover past steps only: not aligned.
        regressors = align({n: c for n, c in columns.items() if STEPS_COLUMN not in n},
                           pd.DatetimeIndex(series.index), horizon)
    except (SeriesMissingError, ValueError) as exc:
        return prediction_record(dataset, error=f"the additional regressors of this unit cannot be read: {exc}")
    return Job(dataset, series, config_json, regressors, columns)


def predict(job: Job) -> PredictionRecord:
    """Dataset → Prediction: every unit of the record (its own and the `more` batched with it), one after the
    other. A model failure is carried in that unit's `error`, never raised. A record that holds every
    validation unit of its series (cheap units of a short series travel together) also carries each model's
    final refit, so the series needs no second trip through the predictors."""
    dataset, series = job.dataset, job.series
    config = config_from_json(job.config_json)
    units = [dataset["unit"], *dataset.get("more", [])]
    results = [_result(config, series, unit, job.regressors, job.columns) for unit in units]
    first, *more = [_outcome(unit, result) for unit, result in zip(units, results, strict=True)]
    if _whole_series(units):
        more += [_outcome(unit, final_refit(config, series, UnitSpec.from_dict(unit), job.regressors))
                 for unit in final_refits(config, results)]
    # The end of the history for the answer's plot is read by the validator where `series` keeps it.
    return prediction_record(dataset, config.model_parameters.main_accuracy_estimator,
                             **{k: v for k, v in first.items() if k != "unit"}, more=more)


def predict_all(jobs: list[Job]) -> list[PredictionRecord]:
    """`predict` of each job, in order: one pool call for a small request's every series (the fast lane)."""
    return [predict(job) for job in jobs]


def _whole_series(units: list[UnitRecord]) -> bool:
    """Every validation unit of the series is in this record (and nothing else)."""
    return not any(u["refit"] for u in units) and sorted(u["index"] for u in units) == list(range(units[0]["total"]))


def final_refits(config: Any, results: list[UnitResult]) -> list[UnitRecord]:
    """The refit units the validator would ask for (forecasting.selection.refits_needed, numbered after the
    validation units as timex_stream.runtime.decide.plan_refits numbers them), from every validation unit of a
    series."""
    specs = refits_needed(config, results).specs
    return [unit_record(spec, len(results) + i, len(specs), refit=True) for i, spec in enumerate(specs)]


def _result(config: Any, series: pd.Series, unit: UnitRecord, regressors: pd.DataFrame | None,
            columns: dict[str, pd.Series] | None = None) -> UnitResult:
    # Validation units are scored only; each model's best is refitted for its final forecast, here (a whole
    # series in one record) or when the validator sends it back. A historical step validates, refits and
    # forecasts in one go (forecasting.historical).
    return run(config, series, UnitSpec.from_dict(unit), unit["refit"], regressors, columns)


def _outcome(unit: UnitRecord, result: UnitResult) -> UnitOutcomeRecord:
    """One unit's UnitOutcome record."""
    return unit_outcome(unit, error=result.error, metrics=result.metrics, test_forecast=result.test_forecast,
                        forecast=result.forecast.to_dict() if result.forecast else None,
                        fit_seconds=result.fit_seconds, params={k: str(v) for k, v in result.params.items()})


def prediction_record(dataset: DatasetRecord, estimator: str = "mae", **result: Any) -> PredictionRecord:
    """The Prediction for `dataset`'s units; `result` holds what they produced (UnitOutcome fields), or just
    an `error`, which is then every unit's (a batch stopped by a limit, a series that cannot be read)."""
    more = result.pop("more", None)
    if more is None:
        more = [unit_outcome(u, error=result.get("error")) for u in dataset.get("more", [])]
    return prediction(dataset["request_id"], dataset["series"], dataset["series_total"], dataset["unit"],
                      main_accuracy_estimator=estimator, ref=dataset["ref"], more=more,
                      worker=f"{socket.gethostname()}/{os.getpid()}", **result)


def fits(prediction: PredictionRecord) -> str:
    """Each unit of a prediction record: what was fitted, its validation metrics (or error) and fit time."""
    def one(o: UnitOutcomeRecord | PredictionRecord) -> str:
        u = o["unit"]
        what = f"{u['model']}/{u['transformation']}/window {u['window']}{' (refit)' if u['refit'] else ''}"
        outcome = o["error"] or ", ".join(f"{k} {v:.4g}" for k, v in sorted(o["metrics"].items()))
        return f"{what}: {outcome or 'ok'} in {o['fit_seconds']:.2f} s"
    return "; ".join(one(o) for o in [prediction, *prediction["more"]])
