"""`fetch_backoff`: an aiokafka consumer it tuned, started on the real broker, makes its fetch results with the short
prefetch backoff (the attribute set is the one the fetcher reads), a record it held does not hold its partition's
next records for the long fetch of an idle one, and a record it never takes does not make it fetch often."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiokafka

from timex_stream.runtime.fetch_backoff import HELD_RECENT_S, PREFETCH_BACKOFF_S, shorten_prefetch_backoff
from timex_stream.runtime.kafka import create_missing, producer


async def _until_held(kafka: aiokafka.AIOKafkaConsumer, tp: aiokafka.TopicPartition) -> None:
    """Until `kafka` holds fetched records of `tp` not yet taken: what holds the broker's other fetches."""
    deadline = time.monotonic() + 30
    while tp not in kafka._fetcher._records:
        assert time.monotonic() < deadline, "the record was never fetched"
        await asyncio.sleep(0.01)


async def _backoff_of_a_fetch_result(bootstrap: str, topic: str) -> tuple[float, float]:
    """(the fetcher's prefetch backoff, the backoff of the result it made for `topic`'s one record)."""
    kafka = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      auto_offset_reset="earliest")
    shorten_prefetch_backoff(kafka)
    await kafka.start()
    try:
        tp = aiokafka.TopicPartition(topic, 0)
        kafka.assign([tp])
        await _until_held(kafka, tp)
        return kafka._fetcher._prefetch_backoff, kafka._fetcher._records[tp]._backoff
    finally:
        await kafka.stop()


def test_a_tuned_consumer_holds_fetches_for_the_short_backoff_only(kafka_bootstrap: str) -> None:
    topic = f"fetch-backoff-{uuid.uuid4().hex[:8]}"
    prod = producer(kafka_bootstrap)
    prod.produce(topic, value=b"x", partition=0)
    assert prod.flush(30) == 0
    fetcher_backoff, result_backoff = asyncio.run(_backoff_of_a_fetch_result(kafka_bootstrap, topic))
    assert fetcher_backoff == result_backoff == PREFETCH_BACKOFF_S < 0.1  # aiokafka's is 0.1 s


async def _wait_for_next_record_after_a_held_one(bootstrap: str, topic: str, tune: bool) -> float:
    """Seconds from taking a held record of partition 0 to having its next one, while partition 1 gets nothing:
    the fetch for partition 1 alone went out while the record was held (Faust's `fetch_max_wait_ms`)."""
    kafka = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      auto_offset_reset="earliest", fetch_max_wait_ms=1500)
    if tune:
        shorten_prefetch_backoff(kafka)
    prod = producer(bootstrap)
    await kafka.start()
    try:
        busy, idle = aiokafka.TopicPartition(topic, 0), aiokafka.TopicPartition(topic, 1)
        kafka.assign([busy, idle])
        prod.produce(topic, value=b"first", partition=0)
        assert prod.flush(30) == 0
        await _until_held(kafka, busy)
        # past the prefetch backoff (5 ms tuned, 100 ms not; and tuned, well within HELD_RECENT_S): the fetcher asks
        # for the idle partition alone
        await asyncio.sleep(0.05 if tune else 0.3)
        prod.produce(topic, value=b"second", partition=0)
        assert prod.flush(30) == 0
        taken = await kafka.getmany(busy, timeout_ms=1000)
        assert [r.value for r in taken[busy]] == [b"first"]
        started = time.monotonic()
        while not (batch := await kafka.getmany(busy, timeout_ms=5000)):
            assert time.monotonic() - started < 10, "the second record was never fetched"
        assert [r.value for r in batch[busy]] == [b"second"]
        return time.monotonic() - started
    finally:
        await kafka.stop()


def test_a_held_record_does_not_hold_its_partitions_next_ones_for_the_long_fetch(kafka_bootstrap: str) -> None:
    topics = {f"fetch-held-{uuid.uuid4().hex[:8]}": (2, {}) for _ in range(2)}
    create_missing(kafka_bootstrap, topics)
    tuned, untuned = (asyncio.run(_wait_for_next_record_after_a_held_one(kafka_bootstrap, topic, tune))
                      for topic, tune in zip(topics, (True, False), strict=True))
    assert tuned < 0.5, f"the next record came {tuned:.2f} s after the held one was taken"
    assert untuned > 0.8  # aiokafka's own: the fetch for the idle partition ran out its 1.5 s first


async def _fetches_beside_a_record_never_taken(bootstrap: str, topic: str) -> int:
    """Fetches sent in 1 s while partition 0 holds a record fetched over `HELD_RECENT_S` ago and never taken (as a
    Faust table's changelog holds its last fetch) and partition 1 gets nothing."""
    kafka = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      auto_offset_reset="earliest", fetch_max_wait_ms=1500)
    shorten_prefetch_backoff(kafka)
    prod = producer(bootstrap)
    await kafka.start()
    try:
        held = aiokafka.TopicPartition(topic, 0)
        kafka.assign([held, aiokafka.TopicPartition(topic, 1)])
        prod.produce(topic, value=b"never taken", partition=0)
        assert prod.flush(30) == 0
        await _until_held(kafka, held)
        await asyncio.sleep(HELD_RECENT_S + 0.5)
        fetcher, sent = kafka._fetcher, []
        fetch = fetcher._proc_fetch_request
        fetcher._proc_fetch_request = lambda *args: (sent.append(1), fetch(*args))[1]
        await asyncio.sleep(1.0)
        return len(sent)
    finally:
        await kafka.stop()


def test_a_record_never_taken_does_not_make_an_idle_consumer_fetch_often(kafka_bootstrap: str) -> None:
    topic = f"fetch-never-{uuid.uuid4().hex[:8]}"
    create_missing(kafka_bootstrap, {topic: (2, {})})
    sent = asyncio.run(_fetches_beside_a_record_never_taken(kafka_bootstrap, topic))
    assert sent <= 2  # the long wait (1.5 s); with the short one, ~50
