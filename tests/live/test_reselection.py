"""Realised accuracy and re-selection end to end, on the real broker with the stack's processes: one standing
request with two series on one source topic, both a weekly pattern; then one of them changes regime (a level
jump and a trend). The changed series' rolling error passes the threshold, its latest window goes through the
normal selection again (best-models under its reselection id), the new model wins on that window and the
switching revision says why; the rolling error is back under the threshold. The other series keeps its model.
The accuracy of every revision is on the `accuracy` topic too, the re-selection in the live service's metrics,
and a restart of the live service gives the same revisions without selecting again. On a broker and stack of
its own: a restarted live service re-reads every standing request of its broker, and the session's has many."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from schemas import decode_as
from schemas.keys import reselection_of, split_series_key
from schemas.topics import ACCURACY, BEST_MODELS, FORECASTS
from tests.plugins.flows import TIMEOUT
from tests.plugins.live_source import own_live_stack
from tests.plugins.waiting import wait_until
from timex_stream.runtime.kafka import admin, consumer, producer
from timex_stream.runtime.submit import submit
from timex_stream.tools.stack import Stack

START = pd.Timestamp("2026-01-01")
MIN_POINTS, ONSET, END, PATIENCE = 30, 45, 75, 6
PATTERN = (0.0, 10.0, 20.0, 30.0, 20.0, 10.0, 0.0)


def _steady(day: int) -> float:
    return 100.0 + PATTERN[day % 7]


def _shifty(day: int) -> float:
    """The weekly pattern until ONSET, then a jump to 150 and a trend of 8 a day: seasonal naive stops fitting."""
    return _steady(day) if day < ONSET else 150.0 + 8.0 * (day - ONSET)


def _rows(days: range) -> list[bytes]:
    return [json.dumps({"date": (START + pd.Timedelta(days=d)).strftime("%Y-%m-%d"), "steady": _steady(d),
                        "shifty": _shifty(d)}).encode() for d in days]


def _produce(producer: Producer, topic: str, values: list[bytes]) -> None:
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0


class Seen:
    """The request's revisions, accuracy records and re-selection answers, read as they come."""

    def __init__(self, bootstrap: str, rid: str) -> None:
        self.rid = rid
        self.cons = consumer(bootstrap, f"live-reselect-test-{uuid.uuid4().hex[:8]}")
        self.cons.subscribe([FORECASTS.name, ACCURACY.name, BEST_MODELS.name])
        self.revisions: list[dict[str, Any]] = []
        self.accuracy: list[dict[str, Any]] = []
        self.best: list[dict[str, Any]] = []
        self.reselections: list[dict[str, Any]] = []

    def poll(self) -> Seen:
        for msg in self.cons.consume(500, 0.5):
            if msg.error() is not None:
                continue
            key = (msg.key() or b"").decode()
            if msg.topic() == BEST_MODELS.name:  # only this request's: other tests put foreign records there
                if key == self.rid:
                    self.best.append(decode_as("BestModel", msg.value()))
                elif (parent := reselection_of(key)) is not None and parent[0] == self.rid:
                    self.reselections.append(decode_as("BestModel", msg.value()))
            elif split_series_key(key)[0] == self.rid:
                if msg.topic() == FORECASTS.name:
                    self.revisions.append(decode_as("ForecastRevision", msg.value()))
                else:
                    self.accuracy.append(decode_as("Accuracy", msg.value()))
        return self

    def of(self, series: str) -> list[dict[str, Any]]:
        return [r for r in self.poll().revisions if r["series"] == series]


def _topic(bootstrap: str) -> str:
    name = f"live-src-{uuid.uuid4().hex[:8]}"
    client = admin(bootstrap)  # held until the topic exists, and gone (with its threads) once it does
    client.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    return name


def _metrics(stack: Stack) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.web_ports['live']}/metrics", timeout=5) as resp:
        return resp.read().decode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with own_live_stack(tmp_path_factory.mktemp("live-reselection")) as own:
        yield own


def test_a_regime_change_switches_the_model_and_a_steady_series_keeps_its_own(stack: Stack) -> None:
    producer_ = producer(stack.bootstrap)
    source = _topic(stack.bootstrap)
    _produce(producer_, source, _rows(range(ONSET)))
    config = {"activity_title": "live re-selection test",
              "input_parameters": {"source_topic": source, "index_column_name": "date", "frequency": "D",
                                   "live_parameters": {"min_points": MIN_POINTS, "accuracy_window": 10,
                                                       "reselect_patience": PATIENCE, "reselect_factor": 1.5}},
              "model_parameters": {"models": "naive,seasonal_naive", "possible_transformations": "none",
                                   "main_accuracy_estimator": "mae", "test_values": 3,
                                   "delta_training_percentage": 50, "prediction_lags": 3}}
    rid = submit(producer_, config)
    seen = Seen(stack.bootstrap, rid)
    try:
        first = wait_until(lambda: {r["series"] for r in seen.of("steady") + seen.of("shifty")} == {"steady", "shifty"},
                           TIMEOUT, "the first revisions of both series")
        assert first
        assert {b["series"]: b["model"] for b in seen.best} == {"steady": "seasonal_naive", "shifty": "seasonal_naive"}
        _produce(producer_, source, _rows(range(ONSET, END)))
        # the last day is provisional: END - 1 final points + 1, all folded in
        switching = wait_until(lambda: [r for r in seen.of("shifty") if r["switched"]], TIMEOUT,
                               "the revision that switches the changed series' model")[0]
        switched = switching["switched"]
        assert switching["model"] == "naive" and switched["reason"] == "drift"
        assert switched["from_model"] == "seasonal_naive"
        assert switched["old_error"] is None or switched["new_error"] < switched["old_error"]
        # chosen within a bounded number of points: the onset day is final with observation ONSET + 2
        assert ONSET + 2 <= switched["triggered_at"] <= ONSET + 2 + PATIENCE + 3, switched
        assert switching["selected_at"] == switched["triggered_at"]
        (answer,) = [b for b in seen.poll().reselections if b["series"] == "shifty"]
        assert answer["model"] == "naive" and answer["history_points"] == MIN_POINTS
        # the new model's rolling error is back under its threshold
        last = wait_until(lambda: [r for r in seen.of("shifty") if r["revision"] == END], TIMEOUT,
                          "the revision with every point")[0]
        accuracy = last["accuracy"]
        assert last["model"] == "naive" and accuracy["scored"] > 0
        assert accuracy["error"] is not None and accuracy["threshold"] is not None
        assert accuracy["error"] <= accuracy["threshold"], accuracy
        # the steady series kept its model, with no error at all (an exact weekly pattern)
        steady = wait_until(lambda: [r for r in seen.of("steady") if r["revision"] == END], TIMEOUT,
                            "the steady series' last revision")[0]
        assert {r["model"] for r in seen.of("steady")} == {"seasonal_naive"}
        assert not [r for r in seen.of("steady") if r["switched"]]
        assert steady["accuracy"]["error"] == 0.0 and steady["accuracy"]["scored"] >= END - ONSET
        assert not [b for b in seen.reselections if b["series"] == "steady"]
        # the accuracy topic carries each revision's accuracy
        on_topic = wait_until(lambda: [a for a in seen.poll().accuracy if (a["series"], a["revision"])
                                       == ("shifty", END)], TIMEOUT, "the accuracy record")[0]
        assert on_topic["accuracy"] == accuracy and on_topic["model"] == "naive"
        metrics = _metrics(stack)
        assert 'timex_live_reselections_total{outcome="switched",reason="drift"} 1.0' in metrics
        assert f'timex_live_rolling_error{{request_id="{rid}",series="steady"}} 0.0' in metrics
        # A restart re-reads the source and decides the same from the table: it writes no revision again (what an
        # earlier run wrote is read at start, live/published.py) and the next ones keep the switched model, with no
        # new selection.
        before = {(r["series"], r["revision"]): r for r in seen.poll().revisions}
        stack.restart("live")
        _produce(producer_, source, _rows(range(END, END + 3)))
        after = wait_until(lambda: [r for r in seen.of("shifty") if r["revision"] > END], TIMEOUT,
                           "a revision of the changed series after the restart")[0]
        assert after["model"] == "naive" and after["switched"] == before[("shifty", END)]["switched"] is not None
        for series in ("shifty", "steady"):
            numbers = [r["revision"] for r in seen.of(series)]
            assert numbers == sorted(set(numbers)), f"{series}: a revision written again or out of order: {numbers}"
        assert len([b for b in seen.poll().reselections if b["series"] == "shifty"]) == 1
    finally:
        seen.cons.close()
