"""The validator's state and decision without Kafka: the stream's two phases (validate every unit, refit
each model's best) give the core pipeline's answer, in any arrival order, with redeliveries."""

from __future__ import annotations

import json
import random

import pytest

from forecasting.config import parse_config
from forecasting.pipeline import forecast_all
from ingestion.ingest import ingest
from tests.plugins.core_series import wave_csv
from timex_stream.runtime.decide import (
    FORGET,
    Series,
    SeriesState,
    add,
    deadline_marker,
    decide,
    decide_whole,
    encoded_size,
    forgettable,
    history_tail,
    is_complete,
    is_deadline_marker,
    is_forget_marker,
    mark_decided,
    missing_units,
    new_series,
    plan_refits,
    recount,
    stall_due,
    upgrade,
    validated,
)
from timex_stream.runtime.records import history_of, units_of
from timex_stream.runtime.series_store import MemoryStore
from timex_stream.runtime.unit_work import job_for, predict

CONFIG = {"input_parameters": {"source_data_url": "upload:wave.csv", "index_column_name": "date", "frequency": "MS"},
          "model_parameters": {"models": "naive,seasonal_naive,exponentialsmoothing",
                               "possible_transformations": "none,log_modified", "main_accuracy_estimator": "mae",
                               "test_values": 6, "delta_training_percentage": 25, "prediction_lags": 4}}


STORE = MemoryStore()  # the series topic, in memory


@pytest.fixture(scope="module")
def predictions() -> list[dict]:
    out = ingest({"request_id": "r1", "config_json": json.dumps(CONFIG), "csv_data": wave_csv(), "replay_of": None},
                 fetch=lambda url: pytest.fail("no download expected"))
    assert not out.failures
    records = out.datasets(STORE.add(out.stored))
    # naive and seasonal_naive units of this short series travel in one record; exponentialsmoothing alone.
    assert len(records) == 1 + out.units // 3 < out.units
    return [unit for _, dataset in records for unit in units_of(predict(job_for(STORE, dataset)))]


def new_state_of(prediction: dict, parts: dict | None = None) -> Series:
    return new_series("r1/wave", prediction, STORE.config_json(prediction["ref"]), {} if parts is None else parts)


def _run(predictions: list[dict], seed: int) -> dict:
    order = predictions + predictions[:5]  # redeliveries
    random.Random(seed).shuffle(order)
    series = new_state_of(order[0])
    for p in order:
        add(series, p)
    assert validated(series.state) and not is_complete(series.state)
    refits = plan_refits(series)
    assert sorted(len(d["more"]) for _, d in refits) == [0, 1]  # the cheap refits together
    assert {u["model"] for _, d in refits for u in [d["unit"], *d["more"]]} == {"naive", "seasonal_naive",
                                                                                "exponentialsmoothing"}
    assert all(d["unit"]["refit"] and d["ref"] == order[0]["ref"] for _, d in refits)
    refit_predictions = [u for _, d in refits for u in units_of(predict(job_for(STORE, d)))]
    for p in refit_predictions + refit_predictions[:1]:
        add(series, p)
    assert is_complete(series.state)
    series.tail = history_tail(series, STORE)  # what the service reads before a decision
    record, failures = decide(series)
    assert failures == []
    return record


def test_stream_decision_equals_the_core_pipeline_in_any_order(predictions: list[dict]) -> None:
    first, second = _run(predictions, 1), _run(predictions, 2)
    for key in ("model", "transformation", "window", "metrics", "forecast"):
        assert first[key] == second[key], key
    core = forecast_all(parse_config(CONFIG).config, wave_csv(), max_workers=1)["wave"]
    assert (first["model"], first["transformation"], first["window"]) == (
        core.best.spec.model, core.best.spec.transformation, core.best.spec.window)
    assert first["forecast"]["yhat"] == pytest.approx(core.best.forecast.yhat)
    assert len(first["forecast"]["yhat"]) == 4 and first["complete"]
    assert first["units_done"] == first["units_total"] == len(predictions)
    assert {m for m in first["per_model"]} == {"naive", "seasonal_naive", "exponentialsmoothing"}
    # The answer points at the whole history and carries its end (all 60 points here) for plots.
    assert first["history_points"] == 60 and len(history_of(first)) == 60
    assert STORE.series(first["series_ref"], "wave").to_numpy().tolist() == history_of(first).values.tolist()



def test_a_whole_prediction_is_decided_at_once_as_the_core_decides_and_a_partial_one_is_not(
        predictions: list[dict]) -> None:
    cheap = {**CONFIG, "model_parameters": {**CONFIG["model_parameters"], "models": "naive,seasonal_naive"}}
    out = ingest({"request_id": "r2", "config_json": json.dumps(cheap), "csv_data": wave_csv(), "replay_of": None},
                 fetch=lambda url: pytest.fail("no download expected"))
    store = MemoryStore()
    (_, dataset), = out.datasets(store.add(out.stored))  # every unit in one record: its Prediction is whole
    whole = predict(job_for(store, dataset))
    answer = decide_whole(whole, store.config_json(whole["ref"]), store)
    assert answer is not None and answer.failures == []
    best = answer.best_model
    core = forecast_all(parse_config(cheap).config, wave_csv(), max_workers=1)["wave"]
    assert (best["model"], best["transformation"], best["window"]) == (
        core.best.spec.model, core.best.spec.transformation, core.best.spec.window)
    assert best["forecast"]["yhat"] == pytest.approx(core.best.forecast.yhat) and best["complete"]
    assert history_of(best).values.tolist() == store.series(best["series_ref"], "wave").to_numpy().tolist()
    assert (answer.progress["stage"], answer.progress["current_best"]) == ("series_done", best["model"])
    # The first record of the request above holds its cheap units only (exponentialsmoothing's travel alone).
    partial = {**predictions[0], "more": [u for u in predictions[1:] if u["unit"]["model"] != "exponentialsmoothing"]}
    assert decide_whole(partial, STORE.config_json(partial["ref"]), STORE) is None


def test_decided_series_ignores_late_duplicates(predictions: list[dict]) -> None:
    series = new_state_of(predictions[0])
    mark_decided(series)
    assert add(series, predictions[0]) is False and series.units() == [] and series.parts == {}


def test_deadline_decides_with_what_arrived(predictions: list[dict]) -> None:
    series = new_state_of(predictions[0])
    for p in predictions[:4]:
        add(series, p)
    record, failures = decide(series, deadline_s=60)
    assert record["complete"] is False and record["units_done"] == 4
    assert [f["stage"] for f in failures] == ["deadline"] and "4 of" in failures[0]["message"]


def test_deadline_marker_is_a_valid_prediction_for_its_series(predictions: list[dict]) -> None:
    from schemas import decode_as, encode

    state = new_state_of(predictions[0]).state
    marker = decode_as("Prediction", encode("Prediction", deadline_marker(state)))
    assert is_deadline_marker(marker) and (marker["request_id"], marker["series"]) == ("r1", "wave")
    assert not any(is_deadline_marker(p) for p in predictions)


def test_decided_series_leaves_a_small_state_and_no_part_whatever_the_units_and_config(
        predictions: list[dict]) -> None:
    """A decided series leaves bytes that do not grow with its units or its config: its parts are deleted
    (tombstones) and its state stays small, then only until TIMEX_VALIDATOR_FORGET_S tombstones it."""
    few, every = new_state_of(predictions[0]), new_state_of(predictions[0])
    add(few, predictions[0])
    for p in predictions:
        add(every, p)
    every.parts["r1/wave/config"]["config_json"] += " " * 5_000  # a long config
    assert sum(map(encoded_size, every.parts.values())) > 10 * encoded_size(every.state)
    few_bytes, every_bytes = (encoded_size(mark_decided(s)) for s in (few, every))
    assert abs(every_bytes - few_bytes) < 8 and every_bytes < 600
    assert few.parts == every.parts == {}  # every key the series wrote besides its state is deleted
    assert every.state.decided and every.state.units_done == len(predictions)
    assert add(every, predictions[1]) is False and every.parts == {}


def test_forget_marker_is_a_valid_prediction_and_only_old_decisions_are_forgettable(predictions: list[dict]) -> None:
    from schemas import decode_as, encode

    series = new_state_of(predictions[0])
    state = series.state
    assert not forgettable(state, state.first_at + 10**9, forget_s=60)  # live series are never forgotten
    marker = mark_decided(series)
    assert not forgettable(marker, marker.decided_at + 59_000, forget_s=60)
    assert forgettable(marker, marker.decided_at + 61_000, forget_s=60)
    forget = decode_as("Prediction", encode("Prediction", deadline_marker(marker, FORGET)))
    assert is_forget_marker(forget) and not is_deadline_marker(forget)
    assert not any(is_forget_marker(p) for p in predictions)


class _Changelog(dict):
    """The parts table, counting the encoded bytes of every write (what its changelog receives)."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[int] = []

    def __setitem__(self, key: str, value: dict) -> None:
        self.written.append(len(key) + encoded_size(value))
        super().__setitem__(key, value)


def test_a_units_changelog_write_does_not_grow_with_the_units_already_received(predictions: list[dict]) -> None:
    """Each new unit writes its own outcome and the series' small state: the bytes of the 300th unit are
    those of the first (the state used to carry every unit, so each write grew with the units before it)."""
    validation = [p for p in predictions if p["unit"]["index"] == 0]  # the same unit under many indexes
    base = validation[0]
    total = 300
    parts = _Changelog()
    series = new_state_of({**base, "unit": {**base["unit"], "total": total}}, parts)
    per_unit = []
    for i in range(total):
        before = len(parts.written)
        unit = {**base["unit"], "index": i, "total": total}
        assert add(series, {**base, "unit": unit, "history_timestamps": [], "history_values": []})
        per_unit.append(sum(parts.written[before:]) + len(series.key) + encoded_size(series.state))
    assert validated(series.state) and series.state.units_done == total
    first, last = per_unit[1:11], per_unit[-10:]
    assert max(last) - min(first) < 16, (first, last)  # a few more digits in the index and the counter
    assert sum(map(encoded_size, series.units())) > 100 * max(last)  # what the old state wrote each time


def test_a_state_of_the_previous_version_is_upgraded_and_decided_as_before(predictions: list[dict]) -> None:
    """A changelog written by the version that kept one dict per series (units inside) still loads: the
    state goes on as a SeriesState with its units as parts, and the answer is the same."""
    old = {"request_id": "r1", "series": "wave", "units": {}, "total": predictions[0]["unit"]["total"],
           "series_total": 1, "config_json": STORE.config_json(predictions[0]["ref"]), "estimator": "mae",
           "ref": predictions[0]["ref"], "history": [[], []], "first_at": 1, "last_at": 2, "decided": False,
           "refits": {}, "refits_expected": None}
    for p in predictions[:5]:
        old["units"][str(p["unit"]["index"])] = {k: p[k] for k in ("unit", "error", "metrics", "forecast",
                                                                  "fit_seconds", "params")}
        if p["history_timestamps"] and not old["history"][0]:
            old["history"] = [p["history_timestamps"], p["history_values"]]
    state, parts = upgrade("r1/wave", json.loads(json.dumps(old)))
    assert isinstance(state, SeriesState) and state.units_done == 5 and not state.decided
    upgraded = Series("r1/wave", state, parts)
    fresh = new_state_of(predictions[0])
    for p in predictions:
        add(upgraded, p)
        add(fresh, p)
    for series in (upgraded, fresh):
        for _, d in plan_refits(series):
            for p in units_of(predict(job_for(STORE, d))):
                add(series, p)
    assert is_complete(upgraded.state) and is_complete(fresh.state)
    (a, _), (b, _) = decide(upgraded), decide(fresh)
    for key in ("model", "transformation", "window", "metrics", "forecast", "per_model", "history_values_f64",
                "history_timestamps_us", "units_done"):
        assert a[key] == b[key], key
    marker, no_parts = upgrade("r1/old", {"request_id": "r1", "series": "old", "total": 9, "series_total": 1,
                                          "estimator": "mae", "ref": None, "units": {}, "refits": {},
                                          "history": [[], []], "refits_expected": None, "decided": True,
                                          "decided_units": 9, "decided_at": 5})
    assert marker.decided and marker.units_done == 9 and marker.decided_at == 5 and no_parts == {}


def test_after_a_stop_between_a_part_and_its_count_the_recovered_parts_are_counted(predictions: list[dict]) -> None:
    """Each unit's part and the state that counts it are two records: the recovery counts the parts, so a
    redelivered unit whose part is already there (not counted again) does not leave the series short."""
    series = new_state_of(predictions[0])
    for p in predictions:
        add(series, p)
    stale = SeriesState.loads(new_state_of(predictions[0]).state.dumps())  # the state as last written
    recovered = Series(series.key, stale, series.parts)
    assert not validated(stale) and add(recovered, predictions[-1]) is False  # its part is there
    recount(recovered)
    assert validated(stale) and stale.units_done == len(predictions) and not stale.has_history  # read at the decision


CHEAP = {**CONFIG, "model_parameters": {**CONFIG["model_parameters"], "models": "naive,seasonal_naive,theta"}}


def _whole_series_prediction() -> tuple[dict, list[dict]]:
    out = ingest({"request_id": "r2", "config_json": json.dumps(CHEAP), "csv_data": wave_csv(), "replay_of": None},
                 fetch=lambda url: pytest.fail("no download expected"))
    [(_, only)] = out.datasets(STORE.add(out.stored))  # every unit of this short series in one record
    return only, units_of(predict(job_for(STORE, only)))


def test_a_record_holding_a_whole_series_brings_its_final_refits_and_the_series_is_decided_at_once() -> None:
    dataset, units = _whole_series_prediction()
    refits = [u for u in units if u["unit"]["refit"]]
    assert {u["unit"]["model"] for u in refits} == {"naive", "seasonal_naive", "theta"}
    assert all(u["forecast"] and len(u["forecast"]["yhat"]) == 4 for u in refits)
    series = new_series("r2/wave", units[0], STORE.config_json(units[0]["ref"]), {})
    for u in units:
        add(series, u)
    assert plan_refits(series) == [] and is_complete(series.state)  # nothing goes back to the predictors
    record, failures = decide(series)
    core = forecast_all(parse_config(CHEAP).config, wave_csv(), max_workers=1)["wave"]
    assert failures == [] and record["complete"]
    assert (record["model"], record["transformation"], record["window"]) == (
        core.best.spec.model, core.best.spec.transformation, core.best.spec.window)
    assert record["metrics"] == pytest.approx(core.best.metrics)
    assert record["forecast"]["yhat"] == pytest.approx(core.best.forecast.yhat)


def test_a_refit_of_another_unit_than_the_chosen_one_is_asked_again() -> None:
    _, units = _whole_series_prediction()
    series = new_series("r2/wave", units[0], STORE.config_json(units[0]["ref"]), {})
    wrong = next(u for u in units if u["unit"]["refit"] and u["unit"]["model"] == "theta")
    wrong = {**wrong, "unit": {**wrong["unit"], "window": wrong["unit"]["window"] + 1}}
    for u in units:
        add(series, wrong if u["unit"]["refit"] and u["unit"]["model"] == "theta" else u)
    again = plan_refits(series)
    assert [d["unit"]["model"] for _, d in again] == ["theta"] and not is_complete(series.state)
    for u in units_of(predict(job_for(STORE, again[0][1]))):
        add(series, u)
    assert is_complete(series.state) and decide(series)[0]["per_model"]["theta"]["yhat"]


PAIRS = {**CHEAP, "model_parameters": {**CHEAP["model_parameters"],
                                      "combination": {"k": 4, "per_transformation": True}}}


def test_a_lost_refit_of_a_transformation_pair_is_asked_again_alone_and_the_decision_leaves_no_part() -> None:
    """With members per (model, transformation), a model has a refit under each transformation (its own
    part): one lost is asked again by itself, and every part is deleted once the series is decided."""
    out = ingest({"request_id": "r3", "config_json": json.dumps(PAIRS), "csv_data": wave_csv(), "replay_of": None},
                 fetch=lambda url: pytest.fail("no download expected"))
    [(_, only)] = out.datasets(STORE.add(out.stored))
    units = units_of(predict(job_for(STORE, only)))
    refits = [u for u in units if u["unit"]["refit"]]
    assert sorted((u["unit"]["model"], u["unit"]["transformation"]) for u in refits) == sorted(
        (m, t) for m in ("naive", "seasonal_naive", "theta") for t in ("none", "log_modified"))
    lost = next(u for u in refits if u["unit"]["model"] == "theta" and u["unit"]["transformation"] == "none")
    series = new_series("r3/wave", units[0], STORE.config_json(units[0]["ref"]), {})
    for u in units:
        if u is not lost:
            add(series, u)
    assert not is_complete(series.state) and series.state.refits_expected is None
    again = plan_refits(series)
    assert [(d["unit"]["model"], d["unit"]["transformation"], d["more"]) for _, d in again] == [
        ("theta", "none", [])]
    assert [d["unit"] for _, d in missing_units(series)] == [again[0][1]["unit"]]
    for u in units_of(predict(job_for(STORE, again[0][1]))):
        add(series, u)
    assert is_complete(series.state) and missing_units(series) == []
    record, failures = decide(series)
    assert failures == [] and record["model"] == "combination"
    mark_decided(series)
    assert series.parts == {}


def test_each_repair_of_a_stalled_series_doubles_its_next_window(predictions: list[dict]) -> None:
    state = new_state_of(predictions[0]).state
    state.last_at = 0
    assert not stall_due(state, 60_000, 60) and stall_due(state, 60_001, 60)
    # Repaired at 61 s: the units may only be queued behind a long request, so the next try waits 120 s.
    assert not stall_due(state, 181_000, 60, repaired_at=61_000, repairs=1)
    assert stall_due(state, 181_001, 60, repaired_at=61_000, repairs=1)
    assert not stall_due(state, 301_000, 60, repaired_at=61_000, repairs=2)
    state.last_at = 400_000  # a unit came: the window runs from it
    assert not stall_due(state, 400_000 + 60_000, 60)
