"""Delivery guarantees of live requests, on a real broker of this module's own (so that restarting it disturbs no
other test) with the stack's processes: kill -9 of every service during the first selection and of the live
service mid-stream, a broker restart mid-stream, and a replay of the source topic into a new request.

Each time, every revision on `forecast-history` (all of them, in the order written) is compared with an
undisturbed computation of the same observations: the broker-free core (`forecasting.live.follow.LiveSeries`,
fitted with the selection's choice by the same `fit_live`), revised at exactly the revision numbers the service
wrote. So, per series: the revisions only grow and none repeats, each carries the content the undisturbed
computation gives for its number (bit for bit: a revision depends only on the observations it folds, not on
their batching, tests/forecasting/live/test_batching.py), the last one folds every observation, and `forecasts`
ends on it. The `points` of a revision is what it folds since the previous one written, so it is checked
against the history, not the core."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.topics import BEST_MODELS, FAILURES
from tests.plugins.live_stream import (
    MIN_POINTS,
    SERIES,
    TIMEOUT,
    Seen,
    assert_undisturbed,
    chosen,
    has_revision,
    produce_stream,
    revision_content,
    stream_config,
    stream_history,
    stream_topic,
)
from tests.plugins.waiting import wait_until
from timex_stream.runtime.kafka import producer
from timex_stream.runtime.ports import free_port
from timex_stream.runtime.records import now_ms
from timex_stream.runtime.settings import Settings
from timex_stream.runtime.submit import submit
from timex_stream.tools.broker import EmbeddedKafka
from timex_stream.tools.replay import replay_configs
from timex_stream.tools.stack import Stack

STREAMS: list[tuple[str, str, dict[str, Any], int]] = []  # (request, topic, config, rows): replayed later
LONG = 2_000  # rows before the live service is killed mid-stream


@dataclasses.dataclass
class Live:
    """This module's broker (fixed ports and data dir: it can be stopped and started again) and stack."""

    broker: EmbeddedKafka
    stack: Stack

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap_servers


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("live-restarts")
    broker = EmbeddedKafka(Settings.from_env().cache_dir, data_dir / "kafka", port=free_port(),
                           controller_port=free_port())
    broker.start()
    os.environ.setdefault("TIMEX_VALIDATOR_STALL_S", "20")  # as the session stack: lost units asked again soon
    settings = dataclasses.replace(Settings.from_env(), bootstrap_servers=broker.bootstrap_servers,
                                   data_dir=data_dir)
    stack = Stack(settings, only=["ingestion", "predictor", "validator", "live"])
    try:
        stack.start()
        yield Live(broker, stack)
    finally:
        stack.stop()
        broker.stop()
        for log in sorted((data_dir / "logs").glob("*.log")):  # shown by pytest when a test failed
            print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")


def test_kill_9_of_every_service_during_the_first_selection_and_of_live_mid_stream(live: Live) -> None:
    prod, topic = producer(live.bootstrap), stream_topic(live.bootstrap)
    produce_stream(prod, topic, range(MIN_POINTS + 1))
    config = stream_config(topic)
    rid = submit(prod, config)
    seen = Seen(live.bootstrap, rid, topic)
    try:
        wait_until(lambda: sum("selecting a model" in m for m in seen.progress()) >= len(SERIES), TIMEOUT,
                   "the live service's fan-out of both series")
        for name in ("predictor", "validator", "ingestion", "live"):  # the selection is in flight
            assert live.stack.restart(name, signal.SIGKILL) == -signal.SIGKILL
        wait_until(lambda: has_revision(seen, MIN_POINTS + 1), TIMEOUT, "the first revisions")
        # A long enough stream that the restarted service, re-reading it from start_from in polls of 500 records,
        # has its model again before it is through: it recomputes revisions older than the last one written.
        written, days = MIN_POINTS + LONG, MIN_POINTS + LONG + 15
        produce_stream(prod, topic, range(MIN_POINTS + 1, written))
        # a record that does not decode and an observation of a day long final: reported once, restarts or not
        prod.produce(topic, value=b"{not json")
        prod.produce(topic, value=json.dumps({"date": "2026-01-03 12:00:00", **{s: 1.0 for s in SERIES}}).encode())
        wait_until(lambda: has_revision(seen, written), TIMEOUT, "the revisions of the stream so far")
        assert live.stack.restart("live", signal.SIGKILL) == -signal.SIGKILL  # it re-reads from start_from
        produce_stream(prod, topic, range(written, days), flush_each=True)  # while it starts again
        histories = assert_undisturbed(seen, config, days)
        assert all(h[0]["revision"] == MIN_POINTS + 1 for h in histories.values())
        late = [f for f in seen.poll().records[FAILURES.name] if f["stage"] == "late"]
        assert sorted(f["series"] for f in late) == sorted(SERIES), late  # once per series, not again on restart
        assert {f["detail"] for f in late} == {f"{topic}[0]@{written + 1}"}  # rows at offsets 0 .. written - 1
        assert [d["source.offset"] for d in seen.dead] == [str(written)]
        # no selection was asked for twice to the point of two answers differing
        answers = {(b["series"], b["model"]) for b in seen.records[BEST_MODELS.name]}
        assert len(answers) == len(SERIES), answers
        STREAMS.append((rid, topic, config, days))
    finally:
        seen.close()


def test_a_replay_of_the_source_topic_into_a_new_request_gives_the_same_revisions(live: Live) -> None:
    if not STREAMS:  # run alone: a stream of its own first
        prod, topic = producer(live.bootstrap), stream_topic(live.bootstrap)
        days = MIN_POINTS + 10
        produce_stream(prod, topic, range(days))
        config = stream_config(topic)
        original = submit(prod, config)
        first = Seen(live.bootstrap, original, topic)
        try:
            assert_undisturbed(first, config, days)
        finally:
            first.close()
    else:
        original, topic, config, days = STREAMS[0]
    prod = producer(live.bootstrap)
    replayed = replay_configs(live.bootstrap, prod, now_ms() - 3_600_000, request_ids=[original])
    assert len(replayed) == 1 and replayed[0].new_id  # `timex-stream replay --request ID` does this
    seen, again = Seen(live.bootstrap, replayed[0].new_id, topic), Seen(live.bootstrap, original, topic)
    try:
        history = assert_undisturbed(seen, config, days)
        wait_until(lambda: has_revision(again, days), TIMEOUT, "the original's revisions, read again")
        before = {s: {r["revision"]: revision_content(r) for r in stream_history(again, s)} for s in SERIES}
        for series in SERIES:
            for r in history[series]:  # value for value, where both wrote the same revision number
                assert before[series].get(r["revision"], revision_content(r)) == revision_content(r)
            assert before[series][days] == revision_content(history[series][-1])
        assert chosen(seen) == chosen(again)
    finally:
        seen.close()
        again.close()


def test_a_broker_restart_during_a_live_stream_loses_and_reorders_nothing(live: Live) -> None:
    prod, topic = producer(live.bootstrap), stream_topic(live.bootstrap)
    produce_stream(prod, topic, range(MIN_POINTS + 1))
    config = stream_config(topic)
    rid = submit(prod, config)
    seen = Seen(live.bootstrap, rid, topic)
    try:
        wait_until(lambda: has_revision(seen, MIN_POINTS + 1), TIMEOUT, "the first revisions")
        days = MIN_POINTS + 31
        produce_stream(prod, topic, range(MIN_POINTS + 1, MIN_POINTS + 11), flush_each=True)
        writer = threading.Thread(target=produce_stream, args=(producer(live.bootstrap), topic,
                                                         range(MIN_POINTS + 11, days), True))
        writer.start()  # the stream goes on while the broker is away (the producer buffers and retries)
        live.broker.stop()
        live.broker.start()
        writer.join(120)
        assert not writer.is_alive()
        assert_undisturbed(seen, config, days)
        assert all(p.poll() is None for p in live.stack.children.values())  # every service rode it out
    finally:
        seen.close()

