"""`fetch_backoff`: an aiokafka consumer it tuned, started on the real broker, makes its fetch results with the short
prefetch backoff (the attribute set is the one the fetcher reads)."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiokafka

from timex_stream.runtime.fetch_backoff import PREFETCH_BACKOFF_S, shorten_prefetch_backoff
from timex_stream.runtime.kafka import producer


async def _backoff_of_a_fetch_result(bootstrap: str, topic: str) -> tuple[float, float]:
    """(the fetcher's prefetch backoff, the backoff of the result it made for `topic`'s one record)."""
    kafka = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      auto_offset_reset="earliest")
    shorten_prefetch_backoff(kafka)
    await kafka.start()
    try:
        tp = aiokafka.TopicPartition(topic, 0)
        kafka.assign([tp])
        deadline = time.monotonic() + 30
        while tp not in kafka._fetcher._records:  # fetched, not taken: what holds the broker's other fetches
            assert time.monotonic() < deadline, "the record was never fetched"
            await asyncio.sleep(0.01)
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

