"""The validator's share of TIMEX's multivariate stage (pipeline.py: get_best_univariate_predictions, then
get_best_multivariate_predictions), kept apart from the per-series flow it hooks into.

The ingestion computed each series' cross-correlations and extra regressors (forecasting.xcorr) and stored
them with the series' first chunk; the validator reads them once, when the series' state is created, and
keeps them as one of its parts (timex_stream.runtime.decide). What this stage keeps is in the validator's table too, so
a restart goes on where it was: each regressor's "ready" marker and each multivariate unit as a part of its
own (written once), the final refit as one more, and a few counters in the series' `SeriesState`.

1. A series S that is an extra regressor of others is decided univariately as usual; then its validator
   stores S's history followed by its univariate forecast on `series` (as the ingestion stores additional regressors)
   and sends each target T a "regressor ready" marker on `predictions`, keyed to T (as the forget marker),
   naming where that is (or, when S has no forecast, why not).
2. T's univariate units and refits complete as usual, but T is held until every regressor is ready; then
   its validator sends T's multivariate units (each model that takes regressors, with its best univariate
   transformation, over every training window: TIMEX re-runs the model with that transformation), then the
   final refit of the best of them, and decides: the better of univariate and multivariate by the main
   accuracy estimator is kept (TIMEX keeps the multivariate result only if its error is lower); both go in
   the answer. The existing deadline bounds every wait: past it T is answered univariately, with a warning.

Deviation from TIMEX: a regressor's future is its best univariate forecast (TIMEX takes the regressor's
forecast by the same model as the target's); `arima` and `exponentialsmoothing` take regressors (TIMEX's
ARIMA and ES ignore them: see forecasting/models/exponential_smoothing.py).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pandas as pd

from forecasting import historical_multivariate as past_stage
from forecasting import multivariate as stage
from forecasting.selection import refits_needed
from forecasting.units import UnitResult, UnitSpec, batches
from schemas.keys import escape, series_key
from schemas.records import (
    BestModelRecord,
    CandidateRecord,
    DatasetRecord,
    FailureRecord,
    PredictionRecord,
    SeriesRefRecord,
)
from timex_stream.runtime import records
from timex_stream.runtime.decide import (
    MV_BASE,
    READY,
    Series,
    SeriesState,
    choose,
    mv_refit_part,
    mv_unit_part,
    outcome_result,
    ready_part,
    results,
)
from timex_stream.runtime.records import dataset, failure, now_ms
from timex_stream.runtime.series_store import SeriesStore, parts

BASE = MV_BASE  # multivariate units' indexes start here (READY, the ready marker's unit index, is -3)
READY_TRIES, READY_RETRY_S = 60, 2.0  # a marker that beats its target's first unit comes back, boundedly
_UNIT_FIELDS = ("unit", "error", "metrics", "forecast", "fit_seconds", "params")  # a historical step's forecast
_REFIT_FIELDS = ("unit", "error", "forecast", "fit_seconds", "params")


def read_xcorr(store: SeriesStore, ref: dict[str, Any] | None) -> str | None:
    """This series' xcorr (JSON) from its first chunk; None when the request asked for none. Blocking."""
    if ref is None or not ref.get("offsets"):
        return None
    return store.records(ref["partition"], ref["offsets"][:1])[0].get("xcorr_json")


def is_ours(prediction: PredictionRecord) -> bool:
    """A ready marker or a multivariate unit's Prediction: this module's, not the univariate flow's."""
    return prediction["unit"]["index"] == READY or prediction["unit"]["index"] >= BASE


def wanted(series: Series) -> list[str]:
    """The series' extra regressors, when a model of the request can take them."""
    return stage.wanted(series.config, series.xcorr)


def awaited(series: Series) -> list[str]:
    """Every series whose ready marker this one waits for: its extra regressors and those of its historical
    steps (forecasting.historical_multivariate), when a model of the request can take them."""
    found = series.xcorr
    return found.awaited() if found is not None and stage.models(series.config) else []


def _ready(series: Series, regressor: str) -> dict[str, Any] | None:
    """{"where", "error"} of an extra regressor whose marker came (None: not yet)."""
    return series.parts.get(ready_part(series.key, regressor))


# --- 1. a decided series announces its forecast to the series it is a regressor of -------------------------

def announces(series: Series) -> bool:
    """S is an extra regressor of other series and has not told them yet (once per series: the caller sets
    `SeriesState.announced`, written with the state)."""
    found = series.xcorr
    return found is not None and bool(found.used_by) and not series.state.announced


def regressor_chunks(series: Series, record: dict[str, Any], history: pd.Series) -> list[tuple[str, dict[str, Any]]]:
    """(key, SeriesPart) of S's history followed by its univariate forecast, stored on `series` for its targets."""
    rid, name = series.state.request_id, series.state.series
    return parts(rid, name, 0, stage.with_forecast(history, record["forecast"]),
                 key=f"{escape(rid)}/xcorr/{escape(name)}")


def step_chunks(series: Series, history: pd.Series) -> list[tuple[str, list[str], list[tuple[str, dict[str, Any]]]]]:
    """(model, dates, chunks) of S's own historical step forecasts by each model that takes regressors, stored
    next to its forecast for the historical steps of its targets (forecasting.historical_multivariate)."""
    rid, name = series.state.request_id, series.state.series
    found = past_stage.step_forecasts(series.config, history, results(series))
    return [(model, [d.isoformat() for d in f.dates],
             parts(rid, name, 0, _on_grid(f.values, history), key=f"{escape(rid)}/xcorr/{escape(name)}"))
            for model, f in found.items()]


def _on_grid(values: pd.Series, history: pd.Series) -> pd.Series:
    """`values` with the history's frequency when they follow it (stored compactly; and a frequency cannot be
    inferred from fewer than 3 points)."""
    try:
        return values.set_axis(pd.DatetimeIndex(values.index, freq=pd.DatetimeIndex(history.index).freq))
    except ValueError:  # not contiguous on the history's grid: stored with its timestamps
        return values


def where_landed(landed: list[tuple[int, int]], main: int,
                 steps: list[tuple[str, list[str], list[tuple[str, dict[str, Any]]]]]) -> dict[str, Any]:
    """Where S's forecast (the first `main` records) and its step forecasts (`step_chunks`, after) landed."""
    where: dict[str, Any] = {"partition": landed[0][0], "offsets": [o for _, o in landed[:main]], "steps": {}}
    at = main
    for model, dates, chunks in steps:
        where["steps"][model] = {"offsets": [o for _, o in landed[at:at + len(chunks)]], "dates": dates}
        at += len(chunks)
    return where


def ready_markers(series: Series, where: dict[str, Any] | None, error: str | None) -> list[tuple[str, dict[str, Any]]]:
    """(key, marker) telling each target of S where S's stored forecast is (or why there is none)."""
    state, found = series.state, series.xcorr
    rid, name = state.request_id, state.series
    return [(series_key(rid, target), ready_marker(rid, target, name, state, where, error))
            for target in (found.used_by if found else [])]


def ready_marker(rid: str, target: str, regressor: str, state: SeriesState, where: dict[str, Any] | None,
                 error: str | None, tries: int = 0) -> PredictionRecord:
    return records.prediction(rid, target, state.series_total, records.marker_unit(READY, 0, model=regressor),
                              main_accuracy_estimator=state.estimator, ref=state.ref, error=error,
                              params={"where": json.dumps(where), "tries": str(tries)}, worker="validator")


# --- 2. the target collects its regressors, runs its multivariate units, decides ---------------------------

class Step(NamedTuple):
    """What a step of the stage did: `flag` (receive: the state changed; advance: a step was taken; hold: the
    series is held), and the Datasets (key, record) to send for it, in order."""

    flag: bool
    datasets: list[tuple[str, dict[str, Any]]]


def receive(series: Series, prediction: dict[str, Any]) -> Step:
    """Keep a marker or a multivariate unit as its own part of `series` (the first copy stays) and plan what
    comes next; flag: the state changed and should be written. (A ready marker for a series that does not
    exist yet is retried by the caller: validator.book.)"""
    state = series.state
    if state.decided or not awaited(series):  # a marker for a series that takes no regressor: nothing to do
        return Step(False, [])
    fresh = _keep(series, prediction)
    if fresh:
        state.last_at = now_ms()
    step = advance(series)
    return Step(step.flag or fresh, step.datasets)


def retried(prediction: dict[str, Any]) -> dict[str, Any] | None:
    """A ready marker that came before its target's first unit, to be sent again (None: tried enough)."""
    tries = int(prediction["params"].get("tries", "0"))
    if tries >= READY_TRIES:
        return None
    return {**prediction, "params": {**prediction["params"], "tries": str(tries + 1)}}


def _keep(series: Series, prediction: dict[str, Any]) -> bool:
    """Write the record's part; False when it was there already or is not (or no longer) expected: a unit of
    a plan whose count was not stored (a stop in between) is planned and sent again by `advance`."""
    state, unit = series.state, prediction["unit"]
    if unit["index"] == READY:
        if unit["model"] not in awaited(series):
            return False
        part, value = ready_part(series.key, unit["model"]), {
            "where": json.loads(prediction["params"].get("where") or "null"), "error": prediction["error"]}
    elif unit["refit"]:
        if not state.mv_refit_sent:
            return False
        part, value = mv_refit_part(series.key), {k: prediction[k] for k in _REFIT_FIELDS}
    else:
        if state.mv_total is None or not BASE <= unit["index"] < BASE + state.mv_total:
            return False
        part, value = mv_unit_part(series.key, unit["index"]), {k: prediction[k] for k in _UNIT_FIELDS}
    if part in series.parts:
        return False
    series.parts[part] = value
    if not unit["refit"] and unit["index"] != READY:
        state.mv_done += 1
    return True


def _results(series: Series) -> list[UnitResult]:
    return [outcome_result(u) for u in series.mv_units()]


def _refits(series: Series) -> list[UnitResult]:
    refit = series.parts.get(mv_refit_part(series.key))
    return [outcome_result(refit)] if refit else []


def _usable(series: Series) -> dict[str, dict[str, Any]]:
    """Where each regressor that came with a forecast is, in the xcorr's order (so a re-plan is the same)."""
    found = {r: _ready(series, r) for r in awaited(series)}
    return {r: f["where"] for r, f in found.items() if f and f["error"] is None and f["where"]}


def advance(series: Series) -> Step:
    """Plan the next multivariate step once the previous one is complete; flag: a step was taken."""
    state = series.state
    if state.refits_expected is None or state.refits_done < state.refits_expected:
        return Step(False, [])  # the univariate stage goes first: its best transformation per model is needed
    if state.ref is None or any(_ready(series, r) is None for r in awaited(series)):
        return Step(False, [])
    if state.mv_total is None:
        specs = _plan(series)
        state.mv_total = len(specs)
        state.mv_done = len(series.mv_units())
        return Step(True, _unit_datasets(series, specs))
    if state.mv_done >= state.mv_total and not state.mv_refit_sent:
        state.mv_refit_sent = True
        return Step(True, _refit_dataset(series))
    return Step(False, [])


def _ref(series: Series) -> SeriesRefRecord:
    """The series' ref with its usable extra regressors: what its multivariate units read."""
    usable = _usable(series)
    steps = [records.regressor_ref(past_stage.steps_column(n, m), at["offsets"])
             for n, w in usable.items() for m, at in (w.get("steps") or {}).items()]
    return {**(series.state.ref or {}),  # type: ignore[typeddict-item]
            "regressors": [records.regressor_ref(n, w["offsets"]) for n, w in usable.items()] + steps}


def _unit_datasets(series: Series, specs: list[UnitSpec], only: set[int] | None = None
                   ) -> list[tuple[str, dict[str, Any]]]:
    """(key, Dataset) of the multivariate units (those of `only`, by position, when given), cheap ones batched."""
    state, ref = series.state, _ref(series)
    chosen = [i for i in range(len(specs)) if only is None or i in only]
    return [dataset(state.request_id, state.series, state.series_total, specs[first], BASE + first, len(specs),
                    ref, more=[(specs[i], BASE + i) for i in more])
            for first, *more in ([chosen[j] for j in batch] for batch in
                                 batches([specs[i] for i in chosen], (state.ref or {}).get("points", 0)))]


def _refit_dataset(series: Series) -> list[tuple[str, dict[str, Any]]]:
    """(key, Dataset) of the best multivariate unit's final refit (none when every unit failed)."""
    state = series.state
    specs = refits_needed(series.config, _results(series), best_only=True).specs
    if not specs or state.mv_total is None:
        return []
    return [dataset(state.request_id, state.series, state.series_total, specs[0], BASE + state.mv_total, 1,
                    _ref(series), refit=True)]


def missing_units(series: Series) -> list[tuple[str, DatasetRecord]]:
    """(key, Dataset) for what the stage sent and did not get back (stall repair, as decide.missing_units:
    the plan is deterministic, so it is re-planned from the parts)."""
    state = series.state
    if state.decided or state.mv_total is None or state.ref is None:
        return []
    if state.mv_done < state.mv_total:
        specs = _plan(series)
        absent = {i for i in range(len(specs)) if mv_unit_part(series.key, BASE + i) not in series.parts}
        return _unit_datasets(series, specs, absent) if absent else []
    if state.mv_refit_sent and mv_refit_part(series.key) not in series.parts:
        return _refit_dataset(series)
    return []


def _plan(series: Series) -> list[UnitSpec]:
    """Each model that takes regressors, with its best univariate transformation, over every window; then the
    multivariate historical steps (forecasting.historical_multivariate), with the regressors whose step
    forecasts came."""
    if series.state.ref is None:
        return []
    usable = _usable(series)
    final = [r for r in wanted(series) if r in usable]
    ready = {r: {m: [pd.Timestamp(d) for d in at["dates"]] for m, at in (w.get("steps") or {}).items()}
             for r, w in usable.items()}
    return (stage.plan(series.config, choose(series).per_model, series.state.ref["points"], final)
            + past_stage.plan(series.config, results(series), past_stage.steps_in(series.xcorr), ready))


def hold(series: Series) -> Step:
    """At the univariate decision: flag True while the multivariate stage still runs (the caller keeps the
    state and waits for the next record), with the Datasets of the step it may take now."""
    if not awaited(series):
        return Step(False, [])
    step = advance(series)
    return Step(not finished(series), step.datasets)


def finished(series: Series) -> bool:
    """Nothing (more) to wait for: decide. With no regressor wanted, at once."""
    regressors = awaited(series)
    if not regressors:
        return True
    state = series.state
    if any(_ready(series, r) is None for r in regressors) or state.mv_total is None:
        return False
    if state.mv_total == 0:
        return True
    if state.mv_done < state.mv_total:
        return False
    return (not state.mv_refit_sent or mv_refit_part(series.key) in series.parts
            or not refits_needed(series.config, _results(series), best_only=True).specs)


# --- the answer ---------------------------------------------------------------------------------------------

def candidate(record: BestModelRecord, regressors: list[str] | None = None) -> CandidateRecord | None:
    """A chosen model as the answer's "univariate"/"multivariate" entry."""
    if record["model"] is None:
        return None
    return records.candidate(record["model"], record["transformation"], metrics=record["metrics"],
                             forecast=record["forecast"], regressors=regressors or [])


def _multivariate_best(series: Series) -> UnitResult | None:
    """The best multivariate unit with its final refit folded in (None: it has no final forecast)."""
    return stage.best(series.config, _results(series), _refits(series))


def answer(series: Series, record: BestModelRecord) -> list[FailureRecord]:
    """Add the answer's xcorr keys to `record` (keeping the better stage in its model/forecast); → Failures."""
    found = series.xcorr
    record.update({"xcorr": None, "univariate": None, "multivariate": None, "kept": None})
    if found is None:
        return []
    record["xcorr"] = found.answer()
    record["univariate"] = candidate(record)
    record["kept"] = "univariate" if record["model"] is not None else None
    regressors = wanted(series)
    if not regressors:
        return []
    rid, name = series.state.request_id, series.state.series
    ready = {r: _ready(series, r) for r in regressors}
    problems = [f"{r}: {f['error']}" for r, f in ready.items() if f and f["error"]]
    late = [r for r, f in ready.items() if f is None]
    best = _multivariate_best(series)
    failures = []
    if late:
        problems.append(f"the forecasts of {', '.join(late)} did not arrive in time")
    if best is None and not problems:
        problems.append("no model fitted with the extra regressors produced a forecast")
    if problems:
        failures.append(failure(rid, "xcorr", "answered with the univariate model only: " + "; ".join(problems),
                                series=name))
    if best is None or best.forecast is None:
        return failures
    multivariate = records.candidate(best.spec.model, best.spec.transformation, metrics=best.metrics,
                                     forecast=best.forecast.to_dict(), regressors=best.spec.regressors)
    record["multivariate"] = multivariate
    if stage.keeps(series.config, record["metrics"] if record["model"] is not None else None, best):
        record.update({"model": best.spec.model, "transformation": best.spec.transformation,
                       "window": best.spec.window, "metrics": dict(best.metrics),
                       "forecast": best.forecast.to_dict(), "kept": "multivariate"})
    return failures
