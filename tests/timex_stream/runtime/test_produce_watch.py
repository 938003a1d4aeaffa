"""The produce watch: writes unacknowledged longer than its threshold are one episode (one WARN line, the gauge at
1, the counter once), whatever the number of records or checks; acknowledged again, the gauge goes back to 0.
aiokafka's per-retry lines are counted and quoted, not logged one by one. (On a real cluster with two brokers
down: tests/faults/test_cluster_faults.py.)"""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import CollectorRegistry

from timex_stream.runtime.produce_watch import ProduceWatch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _value(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name)


def test_one_episode_per_refusal_whatever_the_records_and_checks(caplog: pytest.LogCaptureFixture) -> None:
    registry, clock = CollectorRegistry(), Clock()
    watch = ProduceWatch(registry, after_s=5.0, clock=clock)
    caplog.set_level(logging.WARNING, logger="timex_stream.runtime.produce_watch")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        pending = [watch.track(loop.create_future()) for _ in range(50)]
        # aiokafka retrying a refused batch, many times: counted, kept for the episode's line
        logging.getLogger("aiokafka.producer.sender").warning(
            "Got error produce response on topic-partition %s, retrying. Error: %s", "datasets-1",
            "NotEnoughReplicasError")
        for step in range(20):  # 10 s of checks, twice a second
            clock.now += 0.5
            watch.check()
            if step == 5:  # before the threshold: no episode yet
                assert _value(registry, "timex_produce_refused") == 0
        assert _value(registry, "timex_produce_refused") == 1
        for fut in pending:
            fut.set_result(None)
        await asyncio.sleep(0)  # done callbacks run
        clock.now += 1
        watch.check()
        watch.check()

    watch.install()
    try:
        asyncio.run(scenario())
    finally:
        sender = logging.getLogger("aiokafka.producer.sender")
        sender.handlers.remove(watch.lines)
        sender.propagate = True
    lines = [r.getMessage() for r in caplog.records if r.name == "timex_stream.runtime.produce_watch"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("writes to Kafka not acknowledged for 5 s (50 records waiting")
    assert "NotEnoughReplicasError" in lines[0]
    assert lines[1] == "writes to Kafka acknowledged again after 11 s"  # since the oldest write was sent
    assert _value(registry, "timex_produce_refused") == 0
    assert _value(registry, "timex_produce_refused_episodes_total") == 1
    assert _value(registry, "timex_produce_retries_total") == 1
    assert not [r for r in caplog.records if r.name == "aiokafka.producer.sender"]  # not in the log itself


def test_writes_acknowledged_in_time_are_no_episode() -> None:
    registry, clock = CollectorRegistry(), Clock()
    watch = ProduceWatch(registry, after_s=5.0, clock=clock)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(30):  # a steady flow, each write acknowledged within 2 s
            fut = watch.track(loop.create_future())
            clock.now += 2
            watch.check()
            fut.set_result(None)
            await asyncio.sleep(0)

    asyncio.run(scenario())
    assert _value(registry, "timex_produce_refused") == 0
    assert _value(registry, "timex_produce_refused_episodes_total") == 0
