"""The validator forgets a decided series: a late duplicate inside the grace window changes nothing, then the
series' key is deleted from the table (a tombstone on its changelog), with no second answer and no repair."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable

import pandas as pd
from confluent_kafka import Producer

from schemas import series_key
from schemas.topics import PREDICTIONS
from tests.plugins.flows import TIMEOUT, best_models_for, stall_repairs
from timex_stream.runtime.kafka import consumer
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack

CHANGELOG = "timex-validator-series-states-changelog"


def _records(bootstrap: str, topic: str, key: str, until: Callable[[list], bool], timeout: float
             ) -> list[tuple[bytes | None]]:
    """Values of `topic` whose key is `key` (raw, or JSON as Faust writes table keys), read from the start until
    `until(values)` or `timeout`."""
    cons = consumer(bootstrap, f"read-{key}-{time.monotonic_ns()}", **{"auto.offset.reset": "earliest"})
    cons.subscribe([topic])
    values: list = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(values):
            msg = cons.poll(0.5)
            if msg is not None and not msg.error() and msg.key() in (key.encode(), json.dumps(key).encode()):
                values.append(msg.value())
    finally:
        cons.close()
    return values


def _keyed_records(bootstrap: str, topic: str, prefix: str, timeout: float) -> dict[bytes, list[bytes | None]]:
    """Values by key of the records of `topic` whose key starts with `prefix`, read to the end."""
    cons = consumer(bootstrap, f"read-{prefix}-{time.monotonic_ns()}", **{"auto.offset.reset": "earliest"})
    cons.subscribe([topic])
    found: dict[bytes, list[bytes | None]] = {}
    deadline, quiet = time.monotonic() + timeout, 0
    try:
        while time.monotonic() < deadline and not (found and quiet >= 6):  # 3 s with nothing new: the end
            msg = cons.poll(0.5)
            quiet = quiet + 1 if msg is None else 0
            if msg is not None and not msg.error() and (msg.key() or b"").startswith(prefix.encode()):
                found.setdefault(msg.key(), []).append(msg.value())
    finally:
        cons.close()
    return found


def test_decided_series_is_tombstoned_and_a_late_duplicate_gives_no_second_answer(
        stack: Stack, producer_: Producer, serve_csv: Callable, config_for: Callable, frame_: pd.DataFrame) -> None:
    url = serve_csv("forget.csv", frame_)
    # exponentialsmoothing units travel one per record, so the validator keeps parts across events; naive and
    # theta units of the whole series come in one record, decided in that event without writing a part.
    rid = submit(producer_, config_for(url, ["walk"], models="naive,exponentialsmoothing"))
    whole = submit(producer_, config_for(url, ["walk"], models="naive,theta"))
    views = follow(stack.bootstrap, [rid, whole], TIMEOUT)
    assert all(v.status == "done" and set(v.results) == {"walk"} for v in views.values())
    key = series_key(rid, "walk")
    predictions = _records(stack.bootstrap, PREDICTIONS.name, key, until=bool, timeout=60)
    assert predictions, "the series' predictions are on the topic"
    producer_.produce(PREDICTIONS.name, key=key.encode(), value=predictions[0])  # a late duplicate
    assert producer_.flush(10) == 0
    # TIMEX_VALIDATOR_FORGET_S is 45 s in the tests' stack; the timer ticks every 5 s.
    values = _records(stack.bootstrap, CHANGELOG, key, until=lambda v: bool(v) and v[-1] is None, timeout=240)
    assert values and values[-1] is None, f"no tombstone for {key}: {len(values)} changelog records"
    marker = json.loads(next(v for v in reversed(values) if v is not None))
    assert marker["decided"] and "units" not in marker and "config_json" not in marker
    assert len(json.dumps(marker)) < 1000
    # Every part the series wrote (config, history tail, one per unit, one per final refit) is tombstoned too.
    parts = _keyed_records(stack.bootstrap, CHANGELOG, json.dumps(key)[:-1] + "/", timeout=30)  # JSON keys
    assert len(parts) >= 2 + 2 * 2, sorted(parts)  # config, history, and two models' units and refits
    assert all(values[-1] is None for values in parts.values()), sorted(parts)
    whole_key = series_key(whole, "walk")
    assert _keyed_records(stack.bootstrap, CHANGELOG, json.dumps(whole_key)[:-1] + "/", timeout=10) == {}
    assert [json.loads(v)["decided"] for v in _records(stack.bootstrap, CHANGELOG, whole_key, until=bool,
                                                        timeout=30)][:1] == [True]  # its first write: decided
    assert Counter(best_models_for(stack.bootstrap, rid)) == Counter({"walk": 1})
    assert stall_repairs(stack, rid) == []
