"""The fast lane without a broker: which requests the gate lets through (`fast_lane.eligible`), the publish
sequence with the units answered in place (the answer last, no Datasets) or not (the Datasets go), and the
ingestion's side (`ingestion.in_place.InPlace`, a real pool): each series decided as the validator decides the
Prediction a predictor would make for the same Dataset, or None on the pool's time-out so that the Datasets go;
closed-form models' units on the ingestion's thread instead (`fast_lane.on_the_loop`)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from forecasting.config import parse_config
from ingestion.in_place import InPlace
from schemas import series_key
from schemas.topics import BEST_MODELS, DATASETS, PREDICTIONS, PROGRESS
from tests.flow.conftest import make_config, synthetic_frame
from tests.timex_stream.runtime.test_fan_out import PARTITION, RID, FakeSender, index
from timex_stream.runtime.fan_out import Outcome, accepted, fan_out, publish
from timex_stream.runtime.fast_lane import LOOP_UNITS, LandedStore, eligible, on_the_loop, work
from timex_stream.runtime.records import history_of
from timex_stream.runtime.series_store import MemoryStore
from timex_stream.runtime.settings import Settings
from timex_stream.runtime.unit_work import job_for, predict
from validator.book import Book, Send, StoreReader

POINTS = 72  # synthetic_frame's


def planned(columns: list[str], models: str = "naive,theta", transformations: str = "none", **extra: Any
            ) -> tuple[Any, Outcome]:
    """(the config, the Outcome fan_out plans for `columns` of the synthetic frame)."""
    config = make_config("http://127.0.0.1:1/x.csv", columns, models=models, possible_transformations=transformations)
    parsed = parse_config({**config, **extra})
    frame = synthetic_frame()
    stamps = pd.DatetimeIndex(pd.to_datetime(frame["date"]), freq="MS")
    series = {name: pd.Series(frame[name].to_numpy(), index=stamps, name=name) for name in columns}
    out = Outcome(RID, progress=[accepted(RID, parsed, None)])
    return parsed.config, fan_out(out, parsed.config, series, None)


def test_the_gate_takes_small_plain_requests_of_cheap_models_only() -> None:
    config, out = planned(["walk"])
    assert work(out.planned) == POINTS * out.units == POINTS * 8  # 2 models × 4 training windows
    assert eligible(config, out.planned, POINTS * 8)
    assert not eligible(config, out.planned, POINTS * 8 - 1)  # above the bound
    assert not eligible(config, out.planned, 0)  # 0 turns it off
    config, out = planned(["walk", "trend", "seasonal"])
    assert work(out.planned) == 3 * POINTS * 8 and not eligible(config, out.planned, 3 * POINTS * 8 - 1)
    assert eligible(config, out.planned, 3 * POINTS * 8)
    # A costly model's units travel one a record: the Prediction would not carry the final refits.
    config, out = planned(["walk"], models="naive,exponentialsmoothing")
    assert not eligible(config, out.planned, 10_000)


@pytest.mark.parametrize("extra", [
    {"historical_prediction_parameters": {"initial_index": "2005-06-01", "delta": 2, "save_path": "h.pkl"}},
    {"xcorr_parameters": {"xcorr_max_lags": 4, "xcorr_extra_regressor_threshold": 0.5, "xcorr_mode": "pearson",
                          "xcorr_mode_target": "pearson"}},
], ids=["historical", "xcorr"])
def test_the_gate_leaves_requests_whose_answer_needs_more_than_their_units_to_the_predictors(
        extra: dict[str, Any]) -> None:
    config, out = planned(["walk", "trend"], **extra)
    assert work(out.planned) <= 10_000 and not eligible(config, out.planned, 10_000)


async def _answered(out: Outcome, landing: asyncio.Future) -> list:
    return [(PREDICTIONS, series_key(RID, d["series"]), {"answer of": key}) for key, d in out.datasets(await landing)]


def test_publish_sends_the_answers_in_place_of_the_datasets_and_the_datasets_when_there_are_none() -> None:
    config, out = planned(["walk", "trend"])
    out.in_place = eligible(config, out.planned, 10_000)
    sender = FakeSender()
    assert asyncio.run(publish(sender, index(), out, _answered)) == []  # no unit went to the predictors
    topics = sender.topics()
    assert DATASETS.name not in topics and topics.count(PREDICTIONS.name) == 2
    # The stored parts first (nobody follows `series`), then what readers follow, from the index entry on, sent
    # after the units ran: one produce request.
    stored = len(out.stored)
    assert topics[:stored] == ["series"] * stored and sender.sent_before_landed == stored
    assert sender.sent[stored] == ("requests", RID, index())
    assert sender.sent[stored + 1][0] == "progress" and sender.sent[stored + 1][2]["stage"] == "accepted"
    # Last: the failures and "ingested" (the validator's answer comes after it too), then the answers.
    assert topics[-2:] == [PREDICTIONS.name] * 2
    assert sender.sent[-3][2]["stage"] == "ingested"

    async def none(*_: Any) -> None:
        return None

    for callback, in_place in ((none, True), (_answered, False)):  # a failure there; a request the gate refused
        out.in_place = in_place
        sender = FakeSender()
        units = asyncio.run(publish(sender, index(), out, callback))
        assert len(units) == len(out.planned) == 2 and PREDICTIONS.name not in sender.topics()  # one record each
        assert sender.topics().count(DATASETS.name) == len(units)
        # the index entry and "accepted" still before the units
        assert sender.topics().index("requests") < sender.topics().index("progress") < sender.topics().index(
            DATASETS.name)


def test_the_landed_store_reads_what_a_predictor_reads_at_the_datasets_refs() -> None:
    _, out = planned(["walk"])
    landed = [(PARTITION, 100 + i) for i in range(len(out.stored))]
    (_, dataset), = out.datasets(landed)
    memory = MemoryStore()
    (_, at_memory), = out.datasets(memory.add(out.stored))
    here, there = job_for(LandedStore(out.stored, landed), dataset), job_for(memory, at_memory)
    pd.testing.assert_series_equal(here.series, there.series)
    assert here.config_json == there.config_json


def _untimed(record: Any) -> Any:
    """A record without what depends on the clock (when decided or sent, how long each fit took)."""
    if isinstance(record, dict):
        return {k: _untimed(v) for k, v in record.items() if k not in ("decided_at", "at", "fit_seconds")}
    return [_untimed(v) for v in record] if isinstance(record, list) else record


def test_closed_form_models_run_on_the_ingestions_thread_any_other_in_its_pool() -> None:
    closed = "naive,seasonal_naive,persistence"
    assert on_the_loop(planned(["walk", "trend"], models=closed)[1].planned)
    transformed = planned(["walk"], models="naive,seasonal_naive", transformations="none,log_modified,sqrt")[1]
    assert transformed.units == 24 and on_the_loop(transformed.planned)
    assert not on_the_loop(planned(["walk"], models="naive,theta")[1].planned)
    assert not on_the_loop(planned(["walk"], models="theta")[1].planned)
    # yeo-johnson's fit searches its lambda (~4 ms a fit): the pool's limits bound it, not the count.
    assert not on_the_loop(planned(["walk"], models="naive", transformations="none,yeo-johnson")[1].planned)
    # Past LOOP_UNITS, closed-form units too run in the pool: the thread is held for a bounded time.
    many = planned(["walk", "trend", "seasonal"], models=closed)[1]
    assert many.units > LOOP_UNITS >= planned(["walk"], models=closed)[1].units
    assert not on_the_loop(many.planned)


@pytest.mark.parametrize(("models", "here"), [("naive,theta", False), ("naive,seasonal_naive", True)],
                         ids=["pool", "on-the-loop"])
def test_the_ingestion_decides_each_series_as_the_validator_would(models: str, here: bool) -> None:
    """... with its units in the pool (which gives up on a time-out: the Datasets go) or on its thread."""
    config, out = planned(["walk", "trend"], models=models)
    landed = [(PARTITION, 100 + i) for i in range(len(out.stored))]
    units = out.datasets(landed)
    store = LandedStore(out.stored, landed)
    book, expected = Book({}, StoreReader(store), 600.0, 60.0, 3600.0), []  # the validator, on a dict
    for _, dataset in units:
        effects = asyncio.run(book.receive(predict(job_for(store, dataset))))
        expected += [(e.topic, e.key, e.record) for e in effects if isinstance(e, Send)]

    on_loop = []

    async def answer(settings: Settings) -> Any:
        registry = CollectorRegistry()
        in_place = InPlace(settings, registry)
        try:
            await in_place.start()
            # The records land while the units run: the answer points where they landed, not where they were held.
            landing = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_later(0.05, landing.set_result, landed)
            return await in_place.answer(out, landing)
        finally:
            on_loop.append(registry.get_sample_value("timex_requests_in_place_on_loop_total"))
            in_place.close()

    settings = dataclasses.replace(Settings(), unit_nice=0, unit_memory_mb=2048)
    answers = asyncio.run(answer(settings))
    assert on_the_loop(out.planned) == here and on_loop == [1 if here else 0]
    assert [(topic, key) for topic, key, _ in answers] == [(BEST_MODELS, RID), (PROGRESS, RID)] * 2
    assert [(topic, key, _untimed(r)) for topic, key, r in answers] == [(t, k, _untimed(r)) for t, k, r in expected]
    for _, _, best in answers[::2]:  # decided on the final refits, which came with the units
        assert best["complete"] and best["model"] in models.split(",") and best["forecast"]["yhat"]
        assert best["history_points"] == POINTS == len(history_of(best))
        assert {row["model"] for row in best["comparison"]} == set(models.split(","))
    # The pool's time limit; units on the thread have none but their count (fast_lane.on_the_loop).
    timed_out = asyncio.run(answer(dataclasses.replace(settings, fast_lane_timeout_s=0.001)))
    assert (timed_out is None) == (not here) and on_loop[-1] == (1 if here else 0)
