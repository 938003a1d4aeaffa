"""The validator's state and decision without Kafka: the stream's two phases (validate every unit, refit
each model's best) give the core pipeline's answer, in any arrival order, with redeliveries."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from forecasting.config import parse_config
from forecasting.pipeline import forecast_all
from ingestion.ingest import ingest
from predictor.work import job_for, predict
from timex_stream.records import units_of
from timex_stream.series_store import MemoryStore
from validator.decide import add, decide, is_complete, mark_decided, new_state, plan_refits, validated

CONFIG = {"input_parameters": {"source_data_url": "upload:wave.csv", "index_column_name": "date", "frequency": "MS"},
          "model_parameters": {"models": "naive,seasonal_naive,exponentialsmoothing",
                               "possible_transformations": "none,log_modified", "main_accuracy_estimator": "mae",
                               "test_values": 6, "delta_training_percentage": 25, "prediction_lags": 4}}


def _csv() -> bytes:
    t = np.arange(60)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"date": pd.date_range("2001-01-01", periods=60, freq="MS").strftime("%Y-%m-%d"),
                          "wave": 50 + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, 60)})
    return frame.to_csv(index=False).encode()


STORE = MemoryStore()  # the series topic, in memory


@pytest.fixture(scope="module")
def predictions() -> list[dict]:
    out = ingest({"request_id": "r1", "config_json": json.dumps(CONFIG), "csv_data": _csv(), "replay_of": None},
                 fetch=lambda url: pytest.fail("no download expected"))
    assert not out.failures
    records = out.datasets(STORE.add(out.stored))
    # naive and seasonal_naive units of this short series travel in one record; exponentialsmoothing alone.
    assert len(records) == 1 + out.units // 3 < out.units
    return [unit for _, dataset in records for unit in units_of(predict(job_for(STORE, dataset)))]


def new_state_of(prediction: dict) -> dict:
    return new_state(prediction, STORE.config_json(prediction["ref"]))


def _run(predictions: list[dict], seed: int) -> dict:
    order = predictions + predictions[:5]  # redeliveries
    random.Random(seed).shuffle(order)
    state = new_state_of(order[0])
    for p in order:
        add(state, p)
    assert validated(state) and not is_complete(state)
    refits = plan_refits("r1", "wave", state)
    assert sorted(len(d["more"]) for _, d in refits) == [0, 1]  # the cheap refits together
    assert {u["model"] for _, d in refits for u in [d["unit"], *d["more"]]} == {"naive", "seasonal_naive",
                                                                                "exponentialsmoothing"}
    assert all(d["unit"]["refit"] and d["ref"] == order[0]["ref"] for _, d in refits)
    refit_predictions = [u for _, d in refits for u in units_of(predict(job_for(STORE, d)))]
    for p in refit_predictions + refit_predictions[:1]:
        add(state, p)
    assert is_complete(state)
    record, failures = decide("r1", "wave", state)
    assert failures == []
    return record


def test_stream_decision_equals_the_core_pipeline_in_any_order(predictions: list[dict]) -> None:
    first, second = _run(predictions, 1), _run(predictions, 2)
    for key in ("model", "transformation", "window", "metrics", "forecast"):
        assert first[key] == second[key], key
    core = forecast_all(parse_config(CONFIG).config, _csv(), max_workers=1)["wave"]
    assert (first["model"], first["transformation"], first["window"]) == (
        core.best.spec.model, core.best.spec.transformation, core.best.spec.window)
    assert first["forecast"]["yhat"] == pytest.approx(core.best.forecast.yhat)
    assert len(first["forecast"]["yhat"]) == 4 and first["complete"]
    assert first["units_done"] == first["units_total"] == len(predictions)
    assert {m for m in first["per_model"]} == {"naive", "seasonal_naive", "exponentialsmoothing"}
    # The answer points at the whole history and carries its end (all 60 points here) for plots.
    assert first["history_points"] == 60 and len(first["history_values"]) == 60
    assert STORE.series(first["series_ref"], "wave").to_numpy().tolist() == first["history_values"]


def test_decided_series_ignores_late_duplicates(predictions: list[dict]) -> None:
    state = mark_decided(new_state_of(predictions[0]))
    assert add(state, predictions[0]) is False and state["units"] == {}


def test_deadline_decides_with_what_arrived(predictions: list[dict]) -> None:
    state = new_state_of(predictions[0])
    for p in predictions[:4]:
        add(state, p)
    record, failures = decide("r1", "wave", state, deadline_s=60)
    assert record["complete"] is False and record["units_done"] == 4
    assert [f["stage"] for f in failures] == ["deadline"] and "4 of" in failures[0]["message"]


def test_deadline_marker_is_a_valid_prediction_for_its_series(predictions: list[dict]) -> None:
    from schemas import decode_as, encode
    from validator.decide import deadline_marker, is_deadline_marker

    state = new_state_of(predictions[0])
    marker = decode_as("Prediction", encode("Prediction", deadline_marker("r1/wave", state)))
    assert is_deadline_marker(marker) and (marker["request_id"], marker["series"]) == ("r1", "wave")
    assert not any(is_deadline_marker(p) for p in predictions)


def test_decided_marker_is_small_whatever_the_units_and_config(predictions: list[dict]) -> None:
    """A decided series leaves bytes that do not grow with its units or its config: the +2 KB per request of a
    marker that kept the config, then only until TIMEX_VALIDATOR_FORGET_S tombstones it."""
    few, every = new_state_of(predictions[0]), new_state_of(predictions[0])
    add(few, predictions[0])
    for p in predictions:
        add(every, p)
    every["config_json"] += " " * 5_000  # a long config
    few_bytes, every_bytes = (len(json.dumps(mark_decided(s))) for s in (few, every))
    assert len(json.dumps(every)) > 10 * every_bytes
    assert abs(every_bytes - few_bytes) < 8 and every_bytes < 600
    marker = mark_decided(every)
    assert marker["decided_units"] == len(predictions) and add(marker, predictions[1]) is False


def test_forget_marker_is_a_valid_prediction_and_only_old_decisions_are_forgettable(predictions: list[dict]) -> None:
    from schemas import decode_as, encode
    from validator.decide import FORGET, deadline_marker, forgettable, is_deadline_marker, is_forget_marker

    state = new_state_of(predictions[0])
    assert not forgettable(state, state["first_at"] + 10**9, forget_s=60)  # live series are never forgotten
    marker = mark_decided(state)
    assert not forgettable(marker, marker["decided_at"] + 59_000, forget_s=60)
    assert forgettable(marker, marker["decided_at"] + 61_000, forget_s=60)
    forget = decode_as("Prediction", encode("Prediction", deadline_marker("r1/wave", marker, FORGET)))
    assert is_forget_marker(forget) and not is_deadline_marker(forget)
    assert not any(is_forget_marker(p) for p in predictions)
