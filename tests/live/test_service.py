"""Live requests end to end, on the real broker with the stack's processes and a real source topic: history on
the topic → the standing request → the normal selection (best-models) → revisions on `forecasts` as more
points arrive, one flow per record format; a bad record between good ones; stop; a missing source topic."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from schemas import CODEC
from schemas.topics import BEST_MODELS, FAILURES, FORECAST_HISTORY
from tests.plugins.flows import TIMEOUT
from tests.plugins.live_source import LIVE_MIN_POINTS, LIVE_START
from tests.plugins.live_source import live_config as _config
from tests.plugins.live_stream import Seen
from tests.plugins.waiting import wait_until
from timex_stream.runtime.kafka import admin
from timex_stream.runtime.submit import submit
from timex_stream.tools.stack import Stack

MIN_POINTS, START = LIVE_MIN_POINTS, LIVE_START


def _topic(bootstrap: str) -> str:
    name = f"live-src-{uuid.uuid4().hex[:8]}"
    client = admin(bootstrap)  # held until the topic exists: a destroyed client fails its futures
    client.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    return name


def _value(day: int) -> float:
    return 100.0 + (day % 7) * 3.0 + day * 0.5


def _record(fmt: str, day: int) -> tuple[bytes | None, bytes]:
    stamp = START + pd.Timedelta(days=day)
    if fmt == "wide":
        return None, json.dumps({"date": stamp.strftime("%Y-%m-%d"), "sales": _value(day)}).encode()
    if fmt == "long":
        return b"sales", json.dumps({"timestamp": stamp.isoformat(), "value": _value(day)}).encode()
    return None, CODEC.encode("Observation", {"series": "sales", "timestamp": stamp.to_pydatetime(),
                                              "value": _value(day)})


def _produce(producer: Producer, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


@pytest.fixture
def source(kafka_bootstrap: str) -> str:
    return _topic(kafka_bootstrap)


@pytest.mark.parametrize("fmt", ["wide", "long", "avro"])
def test_a_live_request_is_selected_then_revised_as_points_arrive(stack: Stack, producer_: Producer, source: str,
                                                                 fmt: str) -> None:
    # min_points final points: with no lateness a day is final once the next one is seen, so one more.
    _produce(producer_, source, [_record(fmt, d) for d in range(MIN_POINTS + 1)])
    rid = submit(producer_, _config(source, record_format=fmt if fmt != "wide" else "auto"))
    seen = Seen(stack.bootstrap, rid, source)
    try:
        best = wait_until(lambda: seen.poll().records[BEST_MODELS.name], TIMEOUT, "the selection's answer")
        assert best[0]["series"] == "sales" and best[0]["model"] in {"naive", "seasonal_naive"}
        assert best[0]["history_points"] == MIN_POINTS
        assert any("waiting for 20 points per series" in m for m in seen.progress())
        first = wait_until(seen.revisions, TIMEOUT, "the first revision")[0]
        assert first["revision"] == MIN_POINTS + 1 and first["points"] == MIN_POINTS + 1
        assert first["last_timestamp"] == (START + pd.Timedelta(days=MIN_POINTS)).isoformat()
        assert first["model"] == best[0]["model"] and len(first["forecast"]["yhat"]) == 4
        assert first["forecast"]["timestamps"][0].startswith((START + pd.Timedelta(days=MIN_POINTS + 1)).date()
                                                             .isoformat())
        _produce(producer_, source, [_record(fmt, d) for d in range(MIN_POINTS + 1, MIN_POINTS + 4)])
        revs = wait_until(lambda: [r for r in seen.revisions() if r["revision"] == MIN_POINTS + 4], TIMEOUT,
                          "a revision with the new points")
        assert revs[0]["last_timestamp"] == (START + pd.Timedelta(days=MIN_POINTS + 3)).isoformat()
        numbers = [r["revision"] for r in seen.revisions()]
        assert numbers == sorted(set(numbers)), numbers  # only grows, never repeats
        assert sum(r["points"] for r in seen.revisions()) == MIN_POINTS + 4  # every point is in one revision
        history = [r["revision"] for r in seen.poll().records[FORECAST_HISTORY.name]]
        assert history == numbers
        assert not seen.misplaced() and seen.partitions  # every revision on its key's partition
    finally:
        seen.close()


def test_a_bad_record_goes_to_the_dead_letters_and_the_next_good_one_is_applied(
        stack: Stack, producer_: Producer, source: str) -> None:
    _produce(producer_, source, [_record("long", d) for d in range(MIN_POINTS + 1)])
    rid = submit(producer_, _config(source))
    seen = Seen(stack.bootstrap, rid, source)
    try:
        wait_until(seen.revisions, TIMEOUT, "the first revision")
        _produce(producer_, source, [(b"sales", b"{not json"), _record("long", MIN_POINTS + 1)])
        dead = wait_until(lambda: seen.poll().dead, TIMEOUT, "the dead letter")
        assert dead[0]["source.topic"] == source and dead[0]["source.partition"] == "0"
        assert dead[0]["source.offset"] == str(MIN_POINTS + 1) and "not JSON" in dead[0]["error"]
        wait_until(lambda: [r for r in seen.revisions() if r["revision"] == MIN_POINTS + 2], TIMEOUT,
                   "the revision with the good record after the bad one")
        assert wait_until(lambda: [m for m in seen.progress() if "1 bad record" in m], TIMEOUT, "the count")
    finally:
        seen.close()


def test_stop_ends_the_updates_and_the_last_revision_stays(stack: Stack, producer_: Producer, source: str,
                                                           cli: Callable[..., tuple[int, str, str]]) -> None:
    _produce(producer_, source, [_record("long", d) for d in range(MIN_POINTS + 1)])
    rid = submit(producer_, _config(source))
    seen = Seen(stack.bootstrap, rid, source)
    try:
        wait_until(seen.revisions, TIMEOUT, "the first revision")
        assert cli("stop", rid)[:2] == (0, f"stopped {rid}\n")  # timex-stream stop ID
        wait_until(lambda: [m for m in seen.progress() if "standing request stopped" in m], TIMEOUT,
                   "the final progress event")
        last = seen.revisions()[-1]["revision"]
        _produce(producer_, source, [_record("long", d) for d in range(MIN_POINTS + 1, MIN_POINTS + 4)])
        time.sleep(3)  # nothing may come: a stopped request is not followed
        assert seen.revisions()[-1]["revision"] == last
    finally:
        seen.close()


def test_a_missing_source_topic_is_a_clear_failure(stack: Stack, producer_: Producer,
                                                   kafka_bootstrap: str) -> None:
    missing = f"no-such-topic-{uuid.uuid4().hex[:8]}"
    rid = submit(producer_, _config(missing))
    seen = Seen(stack.bootstrap, rid, missing)
    try:
        failures = wait_until(lambda: seen.poll().records[FAILURES.name], TIMEOUT, "the failure")
        assert failures[0]["stage"] == "source_topic" and failures[0]["fatal"]
        assert missing in failures[0]["message"] and "no such topic" in failures[0]["message"]
        assert missing not in admin(kafka_bootstrap).list_topics(timeout=10).topics  # asking created nothing
    finally:
        seen.close()




def test_a_too_late_observation_is_reported_with_its_offset_and_left_out(stack: Stack, producer_: Producer,
                                                                         source: str) -> None:
    _produce(producer_, source, [_record("long", d) for d in range(MIN_POINTS + 1)])
    rid = submit(producer_, _config(source))
    seen = Seen(stack.bootstrap, rid, source)
    try:
        first = wait_until(seen.revisions, TIMEOUT, "the first revision")[0]
        # a time of a day long final (a redelivered 2026-01-03 itself would be a duplicate, applied once)
        late_one = json.dumps({"timestamp": "2026-01-03T12:00:00", "value": 1.0}).encode()
        _produce(producer_, source, [(b"sales", late_one), _record("long", MIN_POINTS + 1)])
        late = wait_until(lambda: [f for f in seen.poll().records[FAILURES.name] if f["stage"] == "late"], TIMEOUT,
                          "the too-late failure")
        assert late[0]["detail"] == f"{source}[0]@{MIN_POINTS + 1}" and late[0]["series"] == "sales"
        assert not late[0]["fatal"]
        rev = wait_until(lambda: [r for r in seen.revisions() if r["revision"] > first["revision"]], TIMEOUT,
                         "the next revision")[0]
        assert rev["revision"] == first["revision"] + 1  # the late one is not counted in
        assert wait_until(lambda: [m for m in seen.progress() if "1 observation(s) too late" in m], TIMEOUT, "count")
    finally:
        seen.close()


def test_a_csv_history_is_the_start_and_the_topic_extends_it(stack: Stack, producer_: Producer, source: str,
                                                             csv_server: tuple[str, Any],
                                                             cli: Callable[..., tuple[int, str, str]]) -> None:
    base, root = csv_server
    rows = [f"{(START + pd.Timedelta(days=d)).date()},{_value(d)}" for d in range(MIN_POINTS)]
    (root / f"{source}.csv").write_text("date,sales\n" + "\n".join(rows) + "\n")
    config = _config(source)
    config["input_parameters"]["source_data_url"] = f"{base}/{source}.csv"
    rid = submit(producer_, config)
    seen = Seen(stack.bootstrap, rid, source)
    try:
        best = wait_until(lambda: seen.poll().records[BEST_MODELS.name], TIMEOUT, "the selection on the history")
        assert best[0]["history_points"] == MIN_POINTS  # the CSV alone reached min_points
        code, out, err = cli("watch", rid, "--timeout", "3", "--output", "json")  # the answer, then revisions
        assert code == 0, err
        assert json.loads(out.splitlines()[0])["results"]["sales"]["model"] == best[0]["model"]
        first = wait_until(seen.revisions, TIMEOUT, "the first revision")[0]
        assert first["revision"] == MIN_POINTS
        _produce(producer_, source, [_record("long", d) for d in range(MIN_POINTS, MIN_POINTS + 2)])
        rev = wait_until(lambda: [r for r in seen.revisions() if r["revision"] == MIN_POINTS + 2], TIMEOUT,
                         "a revision with the topic's points")[0]
        assert rev["last_timestamp"] == (START + pd.Timedelta(days=MIN_POINTS + 1)).isoformat()
    finally:
        seen.close()
