"""`ChangelogTable` on the real broker: writes reach the changelog on the partition they name once sent, a tombstone
removes a key, and a partition reads back its last values (as the ingestion does when the group gives it that
partition); the service's producer (`async_producer.aiokafka_producer`) says where each record landed."""

from __future__ import annotations

import asyncio
import uuid

from schemas.topics import PROGRESS
from schemas.wiring import INGESTION, Wiring
from timex_stream.runtime.async_producer import RequestSender, aiokafka_producer
from timex_stream.runtime.changelog_table import ChangelogTable, read_partitions
from timex_stream.runtime.kafka import create_missing
from timex_stream.runtime.metrics import Metrics
from timex_stream.runtime.records import progress
from timex_stream.runtime.settings import Settings


def test_writes_deletes_and_a_read_back_per_partition(kafka_bootstrap: str) -> None:
    topic = f"test-changelog-{uuid.uuid4().hex[:8]}"
    create_missing(kafka_bootstrap, {topic: (3, {"cleanup.policy": "compact"})})

    async def write() -> list[tuple[int, int]]:
        sink = aiokafka_producer(kafka_bootstrap, Settings())
        await sink.start()
        try:
            table = ChangelogTable(topic, lambda _, value: value["partition"])
            table["a"] = {"partition": 0, "n": 1}
            table["b"] = {"partition": 2, "n": 2}
            table["a"] = {"partition": 0, "n": 3}  # the last value counts
            table["c"] = {"partition": 2, "n": 4}
            del table["c"]  # a tombstone on partition 2
            assert dict(table) == {"a": {"partition": 0, "n": 3}, "b": {"partition": 2, "n": 2}}
            assert len(table.held) == 5 and not table.unacked  # held until sent
            await table.send(sink)
            await table.acknowledged()
            assert not table.held and not table.unacked
            sender = RequestSender(sink, INGESTION, Metrics("test"))
            handles = [await sender.send(PROGRESS, "r1", progress("r1", "accepted")) for _ in range(2)]
            assert not await sender.acknowledged()
            return await sender.landed(handles)
        finally:
            await sink.stop()

    landed = asyncio.run(write())
    assert landed[0][0] == landed[1][0] and landed[1][1] == landed[0][1] + 1  # one key, one partition, in order
    found = read_partitions(kafka_bootstrap, topic, [0, 1, 2])
    assert found == {0: {"a": {"partition": 0, "n": 3}}, 1: {}, 2: {"b": {"partition": 2, "n": 2}}}


def test_a_sender_refuses_a_topic_its_service_does_not_produce() -> None:
    sender = RequestSender(None, Wiring("x", subscribes=(), produces=()), Metrics("test"))  # type: ignore[arg-type]
    try:
        asyncio.run(sender.send(PROGRESS, "r1", progress("r1", "accepted")))
    except RuntimeError as exc:
        assert "does not declare" in str(exc)
    else:
        raise AssertionError("a send to an undeclared topic went through")


def test_a_table_loads_and_drops_partitions() -> None:
    table = ChangelogTable("unused", lambda _, value: value)
    table.load({0: {"a": 1}, 1: {"b": 2}})
    assert dict(table) == {"a": 1, "b": 2}
    table.load({0: {"c": 3}})  # a partition read again replaces what it held
    table.drop([1])
    assert dict(table) == {"c": 3} and not table.held  # loading writes nothing back
