"""Two waits of aiokafka 0.14's fetcher that stall a service's intake, shortened.

1. The prefetch backoff. The fetcher sends no fetch to a broker while one of its partitions holds fetched records
   the consumer has not taken yet, for up to its `prefetch_backoff` (100 ms; the consumer does not pass it on: it
   came with https://github.com/aio-libs/aiokafka/pull/534, for issue #496). A service's first requests after its
   start waited that long to be fetched: with one broker every partition is on it, and a config arriving while the
   previous one's records were handed to Faust sat ~100 ms (the trivial request's p99: 4 of its first 6 requests at
   120-140 ms against a p50 of 25). `PREFETCH_BACKOFF_S` is what the fetcher waits instead.
2. The long fetch beside held records (the other side of PR #534; no upstream issue for it that we found). Once that
   backoff is over, the fetcher sends the broker a fetch for its other partitions only (those holding records are left
   out until taken), and sends nothing more to that broker while it is in flight. Such a fetch asks the broker to wait
   up to `fetch_max_wait_ms` (Faust sets 1,500 ms) for data on partitions that may get none (an idle partition of
   `configs`, Faust's leader topic), so the held partitions' next records, once the service took the held ones, waited
   out the rest of it. Under a backlog (a service busy enough that its records wait to be taken) the ingestion stood
   still for 1.1-1.4 s every 2-3 s: at 181 configs/s it took 160 a second and the queue grew without end (p99 1.5 s).
   While records fetched less than `HELD_RECENT_S` ago are held, a fetch asks for `HELD_MAX_WAIT_MS` instead. Older ones
   are of partitions the consumer does not take (a Faust table's changelog, read at recovery only, holds its last fetch
   for good): with them counted, an idle ingestion sent 50 fetches a second (its CPU 6 → 30 ms/s, the broker's 28 → 65).
   Faust takes a record it fetched within milliseconds unless its stream's buffer is full, so a quarter of a second
   tells the two apart; with 1 s, the ingestion still fetched every 20 ms for a second after a request. An idle consumer
   keeps the long wait, so it still costs the broker few empty fetches.

Both set private attributes of aiokafka's fetcher (`_prefetch_backoff`, read at each fetch result;
`_fetch_max_wait_ms`, read in `_get_actions_per_node` when it builds the fetches; `_records`, and their `_created`),
so they hold for the aiokafka they were written against only (`silent_broker.check_aiokafka_version`, which TimexApp
runs at start, refuses any other)."""

from __future__ import annotations

import time
from typing import Any

PREFETCH_BACKOFF_S = 0.005
HELD_MAX_WAIT_MS = 20
HELD_RECENT_S = 0.25


def shorten_prefetch_backoff(consumer: Any) -> None:
    """Make `consumer` (an aiokafka AIOKafkaConsumer, before its start) wait PREFETCH_BACKOFF_S instead of the
    prefetch backoff, and fetch beside held records with a wait of HELD_MAX_WAIT_MS."""
    start = consumer.start

    async def start_then_shorten() -> None:
        await start()
        fetcher = consumer._fetcher
        fetcher._prefetch_backoff = PREFETCH_BACKOFF_S
        plan, long_wait = fetcher._get_actions_per_node, fetcher._fetch_max_wait_ms

        def plan_fetches(assignment: Any) -> Any:
            # `_records`: per partition, what was fetched and not yet taken (or a fetch error to raise)
            now = time.monotonic()
            taking = any(now - held._created < HELD_RECENT_S for held in fetcher._records.values())
            fetcher._fetch_max_wait_ms = HELD_MAX_WAIT_MS if taking else long_wait
            return plan(assignment)

        fetcher._get_actions_per_node = plan_fetches

    consumer.start = start_then_shorten
