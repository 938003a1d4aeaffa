"""aiokafka 0.14 sends no fetch to a broker while one of its partitions holds fetched records the consumer has not
taken yet, for up to the fetcher's `prefetch_backoff` (100 ms; the consumer does not pass it on: it came with
https://github.com/aio-libs/aiokafka/pull/534, for issue #496). A service's first requests after its start waited
that long to be fetched: with one broker every partition is on it, and a config arriving while the previous
one's records were handed to Faust sat ~100 ms (the trivial request's p99: 4 of its first 6 requests at 120-140
ms against a p50 of 25). `PREFETCH_BACKOFF_S` is what the fetcher waits instead.

This sets a private attribute of aiokafka's fetcher (`Fetcher._prefetch_backoff`, read at each fetch result), so it
holds for the aiokafka it was written against only (`silent_broker.check_aiokafka_version`, which TimexApp runs at
start, refuses any other)."""

from __future__ import annotations

from typing import Any

PREFETCH_BACKOFF_S = 0.005


def shorten_prefetch_backoff(consumer: Any) -> None:
    """Make `consumer` (an aiokafka AIOKafkaConsumer, before its start) wait PREFETCH_BACKOFF_S instead."""
    start = consumer.start

    async def start_then_shorten() -> None:
        await start()
        consumer._fetcher._prefetch_backoff = PREFETCH_BACKOFF_S

    consumer.start = start_then_shorten
