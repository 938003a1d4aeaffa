"""One live request's records as they come (`Seen`), and the two-series stream the delivery tests run (restarts,
replay, a broker restart; the 3-broker fault tests too): its rows, its standing config, and
`assert_undisturbed`, which compares every revision written with the broker-free core's. Helpers, no
fixtures: imported by the test modules that use them (tests/live, tests/faults)."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Any

import pandas as pd
from aiokafka.partitioner import murmur2
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from forecasting.live.follow import Choice
from schemas import decode_as
from schemas.keys import split_series_key
from schemas.topics import BEST_MODELS, DEAD_LETTERS, FAILURES, FORECAST_HISTORY, FORECASTS, PROGRESS
from tests.plugins.live_source import core_revisions
from tests.plugins.waiting import wait_until
from timex_stream.runtime.kafka import admin, consumer

SERIES = ("sales", "visitors")
MIN_POINTS = 20
START = pd.Timestamp("2026-01-01")
TIMEOUT = 240  # generous: the machine may be loaded, and a killed member's partitions move after its session


class Seen:
    """Everything of one request on the answer topics (and the dead letters of one source topic), read as it
    comes."""

    TOPICS = (BEST_MODELS, PROGRESS, FAILURES, FORECASTS, FORECAST_HISTORY)

    def __init__(self, bootstrap: str, rid: str, source: str) -> None:
        self.rid, self.source = rid, source
        self.cons = consumer(bootstrap, f"live-test-{uuid.uuid4().hex[:8]}")
        self.cons.subscribe([t.name for t in self.TOPICS] + [DEAD_LETTERS.name])
        self.records: dict[str, list[dict[str, Any]]] = {t.name: [] for t in self.TOPICS}
        self.dead: list[dict[str, str]] = []
        self.partitions: dict[tuple[str, str], set[int]] = defaultdict(set)  # (topic, key) → where it was written

    def poll(self) -> Seen:
        for msg in self.cons.consume(500, 0.5):
            if msg.error() is not None:
                continue
            topic, key = msg.topic(), (msg.key() or b"").decode()
            if topic == DEAD_LETTERS.name:
                if key == self.source:
                    self.dead.append({k: v.decode() for k, v in msg.headers() or []})
                continue
            rid = split_series_key(key)[0] if topic in (FORECASTS.name, FORECAST_HISTORY.name) else key
            if rid == self.rid:
                self.partitions[(topic, key)].add(msg.partition())
                name = next(t.value for t in self.TOPICS if t.name == topic)
                self.records[topic].append(decode_as(name, msg.value()))  # type: ignore[arg-type]
        return self

    def revisions(self, series: str = "sales") -> list[dict[str, Any]]:
        return [r for r in self.poll().records[FORECASTS.name] if r["series"] == series]

    def progress(self) -> list[str]:
        return [p["message"] for p in self.poll().records[PROGRESS.name]]

    def misplaced(self) -> dict[tuple[str, str], set[int]]:
        """Revisions of a series written elsewhere than on the one partition Kafka's default partitioner (murmur2 of
        the key, as Java's) gives its key: {(topic, key): the partitions it was written to}."""
        sizes = {FORECASTS.name: FORECASTS.partitions, FORECAST_HISTORY.name: FORECAST_HISTORY.partitions}
        return {(topic, key): where for (topic, key), where in self.partitions.items() if topic in sizes
                and where != {(murmur2(key.encode()) & 0x7FFFFFFF) % sizes[topic]}}

    def close(self) -> None:
        self.cons.close()



def stream_value(series: str, day: int) -> float:
    # non-trivial, exactly representable in JSON: a weekly pattern, a trend and a wobble
    wobble = ((day * 37 + (7 if series == "visitors" else 0)) % 11) / 4
    return round((100.0 if series == "sales" else 40.0) + (day % 7) * 3.0 + day * 0.5 + wobble, 2)


def stream_row(day: int) -> bytes:
    stamp = START + pd.Timedelta(days=day)
    return json.dumps({"date": stamp.strftime("%Y-%m-%d"), **{s: stream_value(s, day) for s in SERIES}}).encode()


def stream_config(topic: str) -> dict[str, Any]:
    return {"activity_title": "live restarts",
            "input_parameters": {"source_topic": topic, "index_column_name": "date", "frequency": "D",
                                 "live_parameters": {"start_from": "earliest", "min_points": MIN_POINTS}},
            "model_parameters": {"models": "naive,arima,autoets", "possible_transformations": "none",
                                 "main_accuracy_estimator": "mae", "test_values": 3,
                                 "delta_training_percentage": 50, "prediction_lags": 4}}


def stream_topic(bootstrap: str) -> str:
    name = f"live-src-{uuid.uuid4().hex[:8]}"
    client = admin(bootstrap)  # held until the topic exists: a destroyed client fails its futures
    client.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    return name


def produce_stream(prod: Producer, topic: str, days: range, flush_each: bool = False) -> None:
    for day in days:
        prod.produce(topic, value=stream_row(day))
        if flush_each:  # one by one: the service folds them in batches of its own
            prod.flush(30)
    assert prod.flush(60) == 0


def stream_history(seen: Seen, series: str) -> list[dict[str, Any]]:
    return [r for r in seen.poll().records[FORECAST_HISTORY.name] if r["series"] == series]


def has_revision(seen: Seen, n: int) -> bool:
    return all(any(r["revision"] == n for r in stream_history(seen, s)) for s in SERIES)


def chosen(seen: Seen) -> dict[str, Choice]:
    best = {b["series"]: Choice.of(b) for b in seen.poll().records[BEST_MODELS.name]}
    return {s: c for s, c in best.items() if c is not None}


def revision_content(revision: dict[str, Any]) -> dict[str, Any]:
    """What must be the same for the same revision number (`points` is relative to the previous one written)."""
    keys = ("revision", "last_timestamp", "forecast", "model", "transformation", "window", "params")
    return {k: revision[k] for k in keys}


def assert_undisturbed(seen: Seen, config: dict[str, Any], days: int) -> dict[str, list[dict[str, Any]]]:
    """Every revision written equals the undisturbed one with its number; numbers never go back (one written
    twice is the same record); the last folds all `days` rows; `forecasts` ends on it. → the history per series
    (distinct revisions)."""
    wait_until(lambda: has_revision(seen, days), TIMEOUT, f"revision {days} of every series")
    choices = chosen(seen)
    assert set(choices) == set(SERIES)
    histories = {}
    for series in SERIES:
        written = stream_history(seen, series)
        numbers = [r["revision"] for r in written]
        assert numbers == sorted(numbers), f"{series}: out of order: {numbers}"
        history = [r for i, r in enumerate(written) if i == 0 or r["revision"] != numbers[i - 1]]
        for i in range(1, len(written)):  # written twice (a producer's retry): the same number, the same content
            if numbers[i] == numbers[i - 1]:
                assert written[i] == written[i - 1]
        numbers = [r["revision"] for r in history]
        assert numbers[-1] == days
        assert [r["points"] for r in history] == [b - a for a, b in zip([0, *numbers], numbers, strict=False)]
        reference = core_revisions(config, series, choices[series], stream_row, days, numbers)
        for rev in history:
            assert revision_content(rev) == revision_content(reference[rev["revision"]]), f"{series} {rev['revision']}"
        latest = [r for r in seen.records["forecasts"] if r["series"] == series][-1]
        assert latest["revision"] == days
        histories[series] = history
    failures = [f for f in seen.records[FAILURES.name] if f["stage"] != "late"]
    assert not failures, failures
    assert not seen.misplaced()  # a series' revisions on its key's partition: in order for every reader
    return histories
