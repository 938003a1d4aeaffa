"""One selection protocol (forecasting.selection), four places that follow it: the same units through the core
pipeline, the predictor's whole-series record (its final refits inside), the validator's decision (its refits
asked for, or brought by that record) and the validator's multivariate stage give the same answer: best
model, transformation, window, metrics and forecast."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.pipeline import forecast_all
from forecasting.regressors import align
from forecasting.selection import SeriesChoice, choose_final, final_refit, refits_needed
from forecasting.units import UnitResult, UnitSpec, run_unit
from forecasting.xcorr import SeriesXcorr
from ingestion.ingest import ingest
from schemas import decode_as, encode
from timex_stream.runtime.decide import add, decide, history_tail, is_complete, new_series, plan_refits
from timex_stream.runtime.records import units_of
from timex_stream.runtime.series_store import MemoryStore, parts
from timex_stream.runtime.unit_work import job_for, predict
from validator import multivariate as mv

N, LAGS = 48, 4
CONFIG = {"input_parameters": {"source_data_url": "upload:x.csv", "index_column_name": "date", "frequency": "MS"},
          "model_parameters": {"models": "naive,seasonal_naive,theta", "possible_transformations": "none,log_modified",
                               "main_accuracy_estimator": "mae", "test_values": 6, "delta_training_percentage": 20,
                               "prediction_lags": LAGS}}
# Opt-in: the median of the two best-validated models' forecasts (forecasting.selection.combine).
COMBINED = {**CONFIG, "model_parameters": {**CONFIG["model_parameters"],
                                           "combination": {"k": 2, "statistic": "median"}}}
# Opt-in: each (model, transformation) pair's best unit a member (a refit each): the median of the four best.
PAIRS = {**CONFIG, "model_parameters": {**CONFIG["model_parameters"],
                                        "combination": {"k": 4, "statistic": "median", "per_transformation": True}}}
# Opt-in: theta on its own transformations (model_transformations), the pairs rank-weighted.
OWN = {**CONFIG, "model_parameters": {**CONFIG["model_parameters"],
                                      "model_transformations": {"theta": "sqrt,log_modified"},
                                      "combination": {"k": 6, "statistic": "rank_weighted_mean",
                                                      "per_transformation": True}}}
DATES = pd.date_range("2001-01-01", periods=N + LAGS, freq="MS")


def _values(seed: int) -> np.ndarray:
    t = np.arange(N + LAGS)
    return 50 + 10 * np.sin(2 * np.pi * t / 12) + 0.3 * t + np.random.default_rng(seed).normal(0, 1.5, N + LAGS)


WAVE, OTHER = _values(3), _values(8)  # OTHER: a regressor known over the horizon too (the multivariate stage)


def _csv() -> bytes:
    return pd.DataFrame({"date": DATES[:N].strftime("%Y-%m-%d"), "wave": WAVE[:N]}).to_csv(index=False).encode()


def _wire(record: dict[str, Any], name: str) -> dict[str, Any]:
    return decode_as(name, encode(name, record))


def _result(outcome: dict[str, Any]) -> UnitResult:
    return UnitResult.from_dict({**outcome, "spec": outcome["unit"]})


def _answer(choice: SeriesChoice) -> dict[str, Any]:
    best = choice.best
    assert best is not None and best.forecast is not None
    return {"model": best.spec.model, "transformation": best.spec.transformation, "window": best.spec.window,
            "metrics": dict(best.metrics), "yhat": best.forecast.yhat,
            "per_model": {m: r.spec for m, r in choice.per_model.items()}}


def _record_answer(record: dict[str, Any]) -> dict[str, Any]:
    rows = [r for r in record["comparison"] if r["best_of_model"]]
    return {"model": record["model"], "transformation": record["transformation"], "window": record["window"],
            "metrics": record["metrics"], "yhat": record["forecast"]["yhat"],
            "per_model": {r["model"]: UnitSpec(r["model"], r["transformation"], r["window"]) for r in rows}}


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    for key in ("model", "transformation", "window", "per_model"):
        assert a[key] == b[key], key
    assert a["metrics"] == pytest.approx(b["metrics"], rel=1e-9) and a["yhat"] == pytest.approx(b["yhat"])


def _ingested(config: dict[str, Any]) -> tuple[MemoryStore, dict[str, Any], list[dict[str, Any]]]:
    """The request ingested (every cheap unit of the series in one record) and that record's prediction."""
    out = ingest({"request_id": "r", "config_json": json.dumps(config), "csv_data": _csv(), "replay_of": None},
                 fetch=lambda url: pytest.fail("no download expected"))
    store = MemoryStore()
    [(_, whole)] = out.datasets(store.add(out.stored))
    return store, whole, [_wire(p, "Prediction") for p in units_of(predict(job_for(store, whole)))]


@pytest.fixture(scope="module")
def stream() -> tuple[MemoryStore, dict[str, Any], list[dict[str, Any]]]:
    return _ingested(CONFIG)


@pytest.fixture(scope="module")
def pairs_stream() -> tuple[MemoryStore, dict[str, Any], list[dict[str, Any]]]:
    return _ingested(PAIRS)


@pytest.fixture(scope="module")
def own_stream() -> tuple[MemoryStore, dict[str, Any], list[dict[str, Any]]]:
    return _ingested(OWN)


@pytest.fixture(scope="module")
def combined_stream() -> tuple[MemoryStore, dict[str, Any], list[dict[str, Any]]]:
    return _ingested(COMBINED)


def _decided(store: MemoryStore, predictions: list[dict[str, Any]], refits_asked: bool) -> dict[str, Any]:
    series = new_series("r/wave", predictions[0], store.config_json(predictions[0]["ref"]), {})
    for p in predictions:
        add(series, p)
    asked = plan_refits(series)
    assert bool(asked) == refits_asked
    for _, d in asked:
        for p in units_of(predict(job_for(store, _wire(d, "Dataset")))):
            add(series, _wire(p, "Prediction"))
    assert is_complete(series.state)
    series.tail = history_tail(series, store)
    record, failures = decide(series)
    assert failures == [] and record["complete"]
    return _wire(record, "BestModel")


def _every_path_gives_the_core_answer(raw: dict[str, Any], stream: tuple[MemoryStore, dict[str, Any],
                                      list[dict[str, Any]]], refits_made: int = 3) -> dict[str, Any]:
    store, whole, predictions = stream
    config = parse_config(raw).config
    core = _answer(forecast_all(config, _csv(), max_workers=1)["wave"])
    # The predictor's whole-series record: every validation unit, then each model's final refit.
    validation = [_result(p) for p in predictions if not p["unit"]["refit"]]
    refits = [_result(p) for p in predictions if p["unit"]["refit"]]
    assert len(validation) == whole["unit"]["total"] and len(refits) == refits_made
    _same(_answer(choose_final(config, validation, refits)), core)
    # The validator, the refits brought by that record (nothing asked) ...
    _same(_record_answer(_decided(store, predictions, refits_asked=False)), core)
    # ... and the same units one per record, the refits asked for and run by the predictors.
    singles = [_wire(p, "Prediction") for u in [whole["unit"], *whole["more"]]
               for p in units_of(predict(job_for(store, {**whole, "unit": u, "more": []})))]
    assert not any(p["unit"]["refit"] for p in singles)
    _same(_record_answer(_decided(store, singles, refits_asked=True)), core)
    return core


def test_the_core_the_predictor_and_the_validator_choose_the_same(stream) -> None:  # type: ignore[no-untyped-def]
    assert _every_path_gives_the_core_answer(CONFIG, stream)["model"] != "combination"


def test_a_combination_comes_out_the_same_through_every_path(combined_stream) -> None:  # type: ignore[no-untyped-def]
    core = _every_path_gives_the_core_answer(COMBINED, combined_stream)
    assert core["model"] == "combination" and set(core["per_model"]) == {"naive", "seasonal_naive", "theta",
                                                                         "combination"}
    # The record also names the members, the statistic and the combined intervals the core gave.
    store, _, predictions = combined_stream
    record = _decided(store, predictions, refits_asked=False)
    row = next(r for r in record["comparison"] if r["model"] == "combination")
    choice = forecast_all(parse_config(COMBINED).config, _csv(), max_workers=1)["wave"]
    assert choice.best is not None and choice.best.forecast is not None
    assert row["params"] == choice.best.params and len(row["params"]["members"].split(",")) == 2
    assert record["forecast"]["lower_95"] == pytest.approx(choice.best.forecast.lower_95)


def test_a_combination_of_transformation_pairs_comes_out_the_same_through_every_path(  # type: ignore[no-untyped-def]
        pairs_stream) -> None:
    """Each (model, transformation) pair's best unit is refitted (six here, not three) and the four best
    validated are the members, through the core, the predictor's record and the validator alike."""
    core = _every_path_gives_the_core_answer(PAIRS, pairs_stream, refits_made=6)
    assert core["model"] == "combination"
    store, _, predictions = pairs_stream
    record = _decided(store, predictions, refits_asked=False)
    row = next(r for r in record["comparison"] if r["model"] == "combination")
    members = row["params"]["members"].split(",")
    assert len(members) == 4 and all("|" in m for m in members)
    assert len({m.split("|")[0] for m in members}) < 4  # a model under two transformations: two members
    choice = forecast_all(parse_config(PAIRS).config, _csv(), max_workers=1)["wave"]
    assert choice.best is not None and row["params"] == choice.best.params


def test_a_models_own_transformations_come_out_the_same_through_every_path(  # type: ignore[no-untyped-def]
        own_stream) -> None:
    """theta on square roots and modified logs, the others on values and modified logs: six pairs, six refits,
    the same rank-weighted combination through the core, the predictor's record and the validator."""
    core = _every_path_gives_the_core_answer(OWN, own_stream, refits_made=6)
    store, _, predictions = own_stream
    assert {(p["unit"]["model"], p["unit"]["transformation"]) for p in predictions} == {
        (m, t) for m in ("naive", "seasonal_naive") for t in ("none", "log_modified")} | {
        ("theta", "sqrt"), ("theta", "log_modified")}
    assert core["model"] == "combination"
    row = next(r for r in _decided(store, predictions, refits_asked=False)["comparison"]
               if r["model"] == "combination")
    assert {"theta|sqrt", "theta|log_modified"} <= set(row["params"]["members"].split(","))


def test_a_failed_refit_disqualifies_its_unit_the_same_way_everywhere(stream) -> None:  # type: ignore[no-untyped-def]
    """The best model's refit fails (a limit, say): its error is said once, and core and validator agree."""
    store, _, predictions = stream
    config = parse_config(CONFIG).config
    validation = [_result(p) for p in predictions if not p["unit"]["refit"]]
    best = refits_needed(config, validation).specs
    broken = [{**p, "error": "the unit went over its time limit", "forecast": None}
              if p["unit"]["refit"] and p["unit"]["model"] == best[0].model else p for p in predictions]
    refits = [_result(p) for p in broken if p["unit"]["refit"]]
    core = choose_final(config, validation, refits)
    assert [r.error for r in core.errors] == ["final refit: the unit went over its time limit"]
    series = new_series("r/wave", broken[0], store.config_json(broken[0]["ref"]), {})
    for p in broken:
        add(series, p)
    assert plan_refits(series) == []
    record, _ = decide(series)
    errors = [r["error"] for r in record["comparison"] if r["error"]]
    assert errors == [r.error for r in core.errors] and record["model"] == (core.best and core.best.spec.model)


# --- the multivariate stage: the same choice over the units fitted with an extra regressor ------------------

MV_CONFIG = {**CONFIG, "model_parameters": {**CONFIG["model_parameters"], "models": "naive,mockup"},
             "xcorr_parameters": {"xcorr_max_lags": 2, "xcorr_extra_regressor_threshold": 0.5}}
XCORR = SeriesXcorr(2, 0.5, {"pearson": {"other": [0.1, 0.2, 0.3, 0.4, 0.9]}}, {"pearson": [-2, -1, 0, 1, 2]},
                    ["other"])


def _run_all(store: MemoryStore, datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_wire(p, "Prediction") for d in datasets for p in units_of(predict(job_for(store, _wire(d, "Dataset"))))]


def test_the_multivariate_stage_chooses_as_the_core() -> None:
    out = ingest({"request_id": "r", "config_json": json.dumps(MV_CONFIG), "csv_data": _csv(), "replay_of": None},
                 fetch=lambda url: pytest.fail("no download expected"))
    store = MemoryStore()
    units = _run_all(store, [d for _, d in out.datasets(store.add(out.stored))])
    series = new_series("r/wave", units[0], store.config_json(units[0]["ref"]), {}, XCORR.to_json())
    for p in units:
        add(series, p)
    for p in _run_all(store, [d for _, d in plan_refits(series)]):
        add(series, p)
    assert is_complete(series.state)
    # The regressor's history and forecast, where a decided regressor's validator stores them.
    other = pd.Series(OTHER, index=DATES, name="other")
    where = {"partition": 0, "offsets": [o for _, o in store.add(parts("r", "other", 0, other, key="r/xcorr/other"))]}
    sent: list[dict[str, Any]] = []  # the Datasets the stage planned, in order (as the service sends them)
    ready = mv.ready_marker("r", "wave", "other", series.state, where, None)
    sent += [d for _, d in mv.receive(series, ready).datasets]
    done = 0
    while not mv.finished(series):
        todo, done = sent[done:], len(sent)
        assert todo, "the stage stopped before it finished"
        for p in _run_all(store, todo):
            sent += [d for _, d in mv.receive(series, p).datasets]
    record, _ = decide(series)
    mv.answer(series, record)
    assert record["multivariate"] is not None and record["multivariate"]["regressors"] == ["other"]
    # The core, on the units the stage planned: validate each, refit the best, choose.
    config = parse_config(MV_CONFIG).config
    wave = pd.Series(WAVE[:N], index=DATES[:N], name="wave")
    regressors = align({"other": other}, pd.DatetimeIndex(wave.index), LAGS)
    specs = [UnitSpec.from_dict(u) for d in sent for u in [d["unit"], *d["more"]] if not u["refit"]]
    assert {s.regressors for s in specs} == {("other",)} and {s.model for s in specs} == {"mockup"}
    results = [run_unit(config, wave, s, with_forecast=False, regressors=regressors) for s in specs]
    [spec] = refits_needed(config, results, best_only=True).specs
    best = choose_final(config, results, [final_refit(config, wave, spec, regressors)]).best
    assert best is not None and best.forecast is not None
    found = record["multivariate"]
    assert (found["model"], found["transformation"]) == (best.spec.model, best.spec.transformation)
    assert found["metrics"] == pytest.approx(best.metrics) and found["forecast"]["yhat"] == pytest.approx(
        best.forecast.yhat)
