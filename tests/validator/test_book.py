"""The validator's ordering rules, on the book over a plain dict (no broker): what each event and each tick
plans, in which order, and what the table holds after the effects are carried out."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ingestion.ingest import ingest
from schemas.topics import BEST_MODELS, DATASETS, FAILURES, PREDICTIONS
from tests.plugins.core_series import wave_csv
from timex_stream.runtime.decide import FORGET, READY, SeriesState, deadline_marker, is_series_key, stall_due
from timex_stream.runtime.records import units_of
from timex_stream.runtime.series_store import MemoryStore
from timex_stream.runtime.unit_work import job_for, predict
from validator import multivariate
from validator.book import Book, Delete, Effect, Publish, Send, StoreReader, Track, Write
from validator.multivariate import ready_marker

CONFIG = {"input_parameters": {"source_data_url": "upload:wave.csv", "index_column_name": "date", "frequency": "MS"},
          "model_parameters": {"models": "naive,seasonal_naive,exponentialsmoothing",
                               "possible_transformations": "none", "main_accuracy_estimator": "mae",
                               "test_values": 6, "delta_training_percentage": 25, "prediction_lags": 4}}
KEY = "r1/wave"
STALL_S, DEADLINE_S, FORGET_S = 60.0, 600.0, 3600.0


@pytest.fixture(scope="module")
def store_and_units() -> tuple[MemoryStore, list[dict[str, Any]]]:
    """The series topic in memory, and every validation unit's Prediction (one unit each, no refit)."""
    store = MemoryStore()
    out = ingest({"request_id": "r1", "config_json": json.dumps(CONFIG), "csv_data": wave_csv(), "replay_of": None},
                 fetch=lambda url: pytest.fail("no download expected"))
    assert not out.failures
    records = out.datasets(store.add(out.stored))
    units = [u for _, d in records for u in units_of(predict(job_for(store, d))) if not u["unit"]["refit"]]
    assert len(units) == out.units > 3
    return store, units


class Carrier:
    """Carries effects out as validator.service does, on a dict; keeps what was sent, in order."""

    def __init__(self, store: MemoryStore, table: dict[str, Any] | None = None) -> None:
        self.table: dict[str, Any] = {} if table is None else table
        self.book = Book(self.table, StoreReader(store), DEADLINE_S, STALL_S, FORGET_S)
        self.store = store
        self.sent: list[Send] = []

    def run(self, effects: list[Effect]) -> list[Effect]:
        """Carry `effects` out; → every effect carried out, in order (a Publish's followers included)."""
        todo, done = list(effects), []
        while todo:
            effect = todo.pop(0)
            done.append(effect)
            if isinstance(effect, Send):
                self.sent.append(effect)
            elif isinstance(effect, Write):
                self.table[effect.key] = effect.value
            elif isinstance(effect, Delete):
                del self.table[effect.key]
            elif isinstance(effect, Track):
                self.book.track(effect)
            elif isinstance(effect, Publish):
                todo[:0] = effect.then(self.store.add(effect.records))
        return done

    def receive(self, prediction: dict[str, Any]) -> list[Effect]:
        return self.run(asyncio.run(self.book.receive(prediction)))

    def predict(self, sends: list[Effect]) -> list[dict[str, Any]]:
        """What the predictors answer to the Datasets among `sends`, one unit per Prediction."""
        return [u for e in sends if isinstance(e, Send) and e.topic == DATASETS
                for u in units_of(predict(job_for(self.store, e.record)))]


def _kinds(effects: list[Effect]) -> list[str]:
    """Effects as short names, e.g. "send failures", "write r1/wave", "track decided"."""
    def kind(e: Effect) -> str:
        if isinstance(e, Send):
            return f"send {e.topic.name}"
        if isinstance(e, Write):
            return f"write {e.key}" if is_series_key(e.key) else "write part"
        if isinstance(e, Delete):
            return f"delete {e.key}" if is_series_key(e.key) else "delete part"
        return f"track {e.status}" if isinstance(e, Track) else "publish"
    return [kind(e) for e in effects]


def _validated(c: Carrier, units: list[dict[str, Any]]) -> list[Effect]:
    """Every validation unit in; → the effects of the last one."""
    for u in units[:-1]:
        c.receive(u)
    return c.receive(units[-1])


def test_refits_are_asked_before_deciding_then_the_answer_goes_before_the_decided_marker(
        store_and_units: tuple[MemoryStore, list[dict]]) -> None:
    store, units = store_and_units
    c = Carrier(store)
    first = c.receive(units[0])
    # A new series: its parts (config, the unit), then its state, then it is watched, then its progress.
    assert _kinds(first) == ["write part", "write part", f"write {KEY}", "track live", "send progress"]
    assert KEY in c.book.live_keys
    last = _validated(c, units)
    kinds = _kinds(last)
    assert "send best-models" not in kinds and kinds[0] == "send datasets"  # the refits, then the state
    assert kinds.index(f"write {KEY}") > max(i for i, k in enumerate(kinds) if k == "send datasets")
    refits = c.predict(last)
    assert refits and all(r["unit"]["refit"] for r in refits)
    assert c.table[KEY].refits_expected == len({r["unit"]["model"] for r in refits})
    for r in refits[:-1]:
        assert "send best-models" not in _kinds(c.receive(r))
    decided = c.receive(refits[-1])
    kinds = _kinds(decided)
    # The answer, its "series_done", then the parts go (tombstones) and the state is written decided.
    assert kinds[:2] == ["send best-models", "send progress"]
    assert kinds[-2:] == [f"write {KEY}", "track decided"]
    assert set(kinds[2:-2]) == {"delete part"}
    answer = next(e.record for e in decided if isinstance(e, Send) and e.topic == BEST_MODELS)
    assert answer["complete"] and answer["units_done"] == len(units) and answer["model"] is not None
    assert list(c.table) == [KEY] and c.table[KEY].decided  # only the decided state is left
    assert KEY in c.book.decided_keys and KEY not in c.book.live_keys


def test_a_series_decided_in_the_event_that_created_it_writes_its_state_alone(
        store_and_units: tuple[MemoryStore, list[dict]]) -> None:
    store, units = store_and_units
    c = Carrier(store)
    c.run(c.book.tick(0))  # nothing to watch yet
    refits = c.predict(_validated(Carrier(store), units))  # the refits another validator asked for
    whole = {**units[0], "more": [{k: u[k] for k in ("unit", "error", "metrics", "forecast", "fit_seconds",
                                                     "params")} for u in units[1:] + refits]}
    assert len(units_of(whole)) == len(units) + len(refits)
    kinds = _kinds(c.receive(whole))
    # No part was written, so none is deleted: the answer, then the decided state.
    assert kinds == ["send best-models", "send progress", f"write {KEY}", "track decided"]


def test_the_deadline_decides_with_what_came_failures_before_the_answer(
        store_and_units: tuple[MemoryStore, list[dict]]) -> None:
    store, units = store_and_units
    c = Carrier(store)
    for u in units[:3]:
        c.receive(u)
    state: SeriesState = c.table[KEY]
    assert c.run(c.book.tick(state.first_at + 1000)) == []  # before the deadline, no stall yet: nothing
    past = state.first_at + DEADLINE_S * 1000 + 1
    sent = c.run(c.book.tick(past))
    assert [(e.topic, e.key, e.record["unit"]["index"]) for e in sent] == [(PREDICTIONS, KEY, -1)]
    assert c.run(c.book.tick(past + 5000)) == []  # sent once
    decided = c.receive(sent[0].record)  # the marker comes back through the stream
    kinds = _kinds(decided)
    assert kinds.index("send failures") < kinds.index("send best-models") < kinds.index(f"write {KEY}")
    assert kinds[-1] == "track decided"
    failures = [e.record for e in decided if isinstance(e, Send) and e.topic == FAILURES]
    assert [f["stage"] for f in failures] == ["deadline"] and "3 of" in failures[0]["message"]
    answer = next(e.record for e in decided if isinstance(e, Send) and e.topic == BEST_MODELS)
    assert answer["complete"] is False and answer["units_done"] == 3
    # A second marker (a duplicate) and a late unit change nothing.
    before = dict(c.table)
    assert c.receive(sent[0].record) == [] and c.receive(units[5]) == []
    assert c.table == before and c.table[KEY].units_done == 3


def test_a_duplicate_unit_changes_nothing_and_sends_nothing(store_and_units: tuple[MemoryStore, list[dict]]) -> None:
    store, units = store_and_units
    c = Carrier(store)
    c.receive(units[0])
    c.receive(units[1])
    before = dict(c.table)
    assert c.receive(units[1]) == [] and c.table == before and c.table[KEY].units_done == 2


def test_a_stalled_series_gets_its_missing_units_again_with_a_doubling_back_off(
        store_and_units: tuple[MemoryStore, list[dict]]) -> None:
    store, units = store_and_units
    c = Carrier(store)
    for u in units[:2]:
        c.receive(u)
    state: SeriesState = c.table[KEY]
    window = STALL_S * 1000
    assert c.run(c.book.tick(state.last_at)) == []  # the timer watches from the last unit on
    assert c.run(c.book.tick(state.last_at + window - 1)) == []  # not stalled yet
    first = state.last_at + window + 1
    repair = c.run(c.book.tick(first))
    asked = sorted(u["index"] for e in repair for u in [e.record["unit"], *e.record["more"]])
    assert {e.topic for e in repair} == {DATASETS} and asked == sorted(u["unit"]["index"] for u in units[2:])
    # The next window is twice as long, measured from the repair (stall_due).
    assert c.run(c.book.tick(first + window + 1)) == []
    assert not stall_due(state, first + window + 1, STALL_S, first, 1)
    assert c.run(c.book.tick(first + 2 * window + 1)) != []
    assert c.book.repairs[KEY] == 2
    # The units that come back are counted; once decided, the series is no longer watched.
    for u in units[2:]:
        c.receive(u)
    for r in c.predict(c.sent[-len(units):]):
        if r["unit"]["refit"]:
            c.receive(r)
    assert c.table[KEY].decided and KEY not in c.book.repairs
    assert all(e.topic == PREDICTIONS for e in c.book.tick(first + 10 * window) if isinstance(e, Send))


def test_after_a_restart_a_series_is_judged_stalled_only_a_window_after_the_timer_started(
        store_and_units: tuple[MemoryStore, list[dict]]) -> None:
    """The validator was down longer than the stall window: the units that came meanwhile wait in its topic, so
    its first tick sends nothing again; a whole window after that tick, with still nothing new, it does."""
    store, units = store_and_units
    c = Carrier(store)
    for u in units[:2]:
        c.receive(u)
    last_at, window = c.table[KEY].last_at, STALL_S * 1000
    restarted = Carrier(store, dict(c.table))
    restarted.book.recover()
    back = last_at + 3 * window  # down three windows, well before the deadline
    assert restarted.run(restarted.book.tick(back)) == []
    assert restarted.run(restarted.book.tick(back + window - 1)) == []
    repair = restarted.run(restarted.book.tick(back + window + 1))
    assert {e.topic for e in repair} == {DATASETS} and len(repair) > 0


def test_a_decided_marker_is_forgotten_after_forget_s(store_and_units: tuple[MemoryStore, list[dict]]) -> None:
    store, units = store_and_units
    c = Carrier(store)
    c.receive(units[0])
    state: SeriesState = c.table[KEY]
    decided = c.receive(deadline_marker(state))
    assert _kinds(decided)[-1] == "track decided"
    assert c.run(c.book.tick(state.decided_at + FORGET_S * 1000 - 1)) == []  # within the grace window
    sent = c.run(c.book.tick(state.decided_at + FORGET_S * 1000 + 1))
    assert [(e.topic, e.key, e.record["unit"]["index"]) for e in sent] == [(PREDICTIONS, KEY, FORGET)]
    assert c.run(c.book.tick(state.decided_at + FORGET_S * 1000 + 2)) == []  # sent once
    forgotten = c.receive(sent[0].record)
    assert _kinds(forgotten) == [f"delete {KEY}", "track forgotten"]
    assert c.table == {} and KEY not in c.book.decided_keys and KEY not in c.book.forget_sent


def test_a_forget_marker_leaves_a_series_that_started_again(store_and_units: tuple[MemoryStore, list[dict]]) -> None:
    store, units = store_and_units
    c = Carrier(store)
    c.receive(units[0])
    assert c.receive(deadline_marker(c.table[KEY], FORGET)) == [] and not c.table[KEY].decided


def _marker(state_of: SeriesState, tries: int = 0) -> dict[str, Any]:
    return ready_marker("r1", "wave", "other", state_of, {"partition": 0, "offsets": [1]}, None, tries)


def test_a_ready_marker_before_its_series_waits_in_the_table_and_is_sent_again(
        store_and_units: tuple[MemoryStore, list[dict]]) -> None:
    store, units = store_and_units
    c = Carrier(store)
    probe = Carrier(store)
    probe.receive(units[0])
    marker = _marker(probe.table[KEY])
    waited = c.receive(marker)
    assert _kinds(waited) == ["write part"] and c.sent == []
    (part, due), = [(k, v["due"]) for k, v in c.table.items()]
    assert c.run(c.book.retry_due(due - 1)) == []
    # A restart: the waiting marker is in the table, so the new book finds it and sends it when due.
    again = Carrier(store, c.table)
    again.book.recover()
    sent = again.run(again.book.retry_due(due))
    assert [(e.topic, e.key) for e in sent] == [(PREDICTIONS, KEY)]
    assert sent[0].record["params"]["tries"] == "1" and sent[0].record["unit"]["index"] == READY
    assert again.run(again.book.retry_due(due + 10_000)) == []  # once per arrival
    # It comes back before the series again: it waits once more, one try further.
    again.receive(sent[0].record)
    assert again.table[part]["marker"]["params"]["tries"] == "2"
    # The series' first unit arrives, then the marker: the waiting part goes.
    again.receive(units[0])
    assert _kinds(again.receive(again.table[part]["marker"]))[0] == "delete part"
    assert part not in again.table and again.book.waiting == {}


def test_a_ready_marker_that_waited_long_enough_is_dropped(store_and_units: tuple[MemoryStore, list[dict]]) -> None:
    store, units = store_and_units
    probe = Carrier(store)
    probe.receive(units[0])
    c = Carrier(store)
    c.receive(_marker(probe.table[KEY], tries=multivariate.READY_TRIES - 1))
    assert len(c.table) == 1
    c.receive(_marker(probe.table[KEY], tries=multivariate.READY_TRIES))
    assert c.table == {} and c.book.waiting == {} and c.sent == []
