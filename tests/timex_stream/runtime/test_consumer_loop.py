"""`ConsumerLoop` on the real broker: records are handled several at a time, after `on_assign` ran for their
partition; a partition is committed once its records are all handled, whatever order they finish in, a handler that
raises included (a poison record never blocks the next); at the stop the group has every offset."""

from __future__ import annotations

import asyncio
import uuid

from confluent_kafka import Message, TopicPartition

from schemas.topics import Topic
from timex_stream.runtime.consumer_loop import ConsumerLoop
from timex_stream.runtime.kafka import consumer, create_missing, producer


def test_records_are_handled_together_and_committed_in_order(kafka_bootstrap: str) -> None:
    topic = Topic(f"test-loop-{uuid.uuid4().hex[:8]}", 2, "n", None, 3_600_000, "a test topic")
    create_missing(kafka_bootstrap, {topic.name: (2, {})})
    prod = producer(kafka_bootstrap)
    for i in range(8):
        prod.produce(topic.name, key=str(i).encode(), value=str(i).encode(), partition=i % 2)
    assert prod.flush(10) == 0
    group = f"test-loop-{uuid.uuid4().hex[:8]}"
    events: list[str] = []
    in_hand = [0, 0]  # now, most

    async def run() -> None:
        stop = asyncio.Event()

        async def handle(msg: Message) -> None:
            n = int(msg.value())
            events.append(f"handle {n}")
            in_hand[0] += 1
            in_hand[1] = max(in_hand)
            try:
                await asyncio.sleep(0.05 * (8 - n))  # later records finish first
                if n == 3:
                    raise ValueError("a poison record")
            finally:
                in_hand[0] -= 1
                if sum(e.startswith("handle") for e in events) == 8 and in_hand[0] == 0:
                    stop.set()

        async def assigned(partitions: list[int]) -> None:
            events.append(f"assigned {sorted(partitions)}")

        async def revoked(partitions: list[int]) -> None:
            events.append("revoked")

        loop = ConsumerLoop(kafka_bootstrap, group, topic, 4, handle, assigned, revoked)
        await asyncio.wait_for(loop.run(stop), 60)

    asyncio.run(run())
    assert events[0] == "assigned [0, 1]" and events.count("revoked") == 1  # read back first; revoked at the stop
    assert in_hand[1] == 4  # four in hand at once, never more
    check = consumer(kafka_bootstrap, group)
    committed = check.committed([TopicPartition(topic.name, 0), TopicPartition(topic.name, 1)], timeout=10)
    check.close()
    assert [tp.offset for tp in committed] == [4, 4]  # every record, the one that raised too
