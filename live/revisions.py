"""How the live service sends its revisions (`forecasts`, `forecast-history`) and their realised accuracy
(`accuracy`): a revision is the service's one record per observation (three with its copies), so they go straight
to the app's producer (aiokafka, idempotent, acks=all: live/service.py's app) without Faust's channel machinery
(a pending message, its callbacks and buffer per record: most of what sending cost, profiled under
bench/live.py), encoded once for its topics.

Why not librdkafka (confluent-kafka), whose batching is in C: it sends one produce request per partition
(librdkafka issue #1700, open), where aiokafka puts every partition of a broker in one; with the revisions on
4 + 4 + 4 partitions the broker then served 2-3 times the requests, and its CPU per observation rose more than
the service's fell (measured: broker 0.68 vs 0.22 ms per observation at 400/s, client 0.09 vs 0.13).

The guarantees are the producer's: a retried send is not written twice, and the order per partition holds, so a
series' revisions land in revision order; each record goes to the partition the catalogue gives its key.
`send` queues without waiting for the broker; `flush` waits for what is queued (a stopped request's last
revisions). What a kill -9 loses from the queue is what an earlier run did not write: live/published.py finds
the last revision written, and the restart writes the ones after it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner, murmur2

from schemas import Topic, encode
from schemas.live_writer import encode_accuracy, encode_revision

_WRITERS = {"ForecastRevision": encode_revision, "Accuracy": encode_accuracy}


def encode_record(schema: str, record: dict[str, Any]) -> bytes:
    """`schemas.encode(schema, record)`, the same bytes; a revision and its accuracy (two records per observation)
    by schemas.live_writer's hand-written encoders (a third of fastavro's time)."""
    writer = _WRITERS.get(schema)
    return encode(schema, record) if writer is None else writer(record)


class KeyHashPartitioner:
    """aiokafka's DefaultPartitioner (murmur2 of the key, as Java), with each key's hash remembered: a series' key
    (request_id/series) comes back with each of its revisions, three records an observation, and aiokafka hashes
    it in pure Python every time (3 % of the service's CPU under bench/live.py). The same partitions."""

    def __init__(self, keys: int = 65_536) -> None:
        self.default = DefaultPartitioner()
        self.hash = functools.lru_cache(maxsize=keys)(murmur2)  # bounded: at most `keys` keys kept

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return self.default(key, all_partitions, available)
        return all_partitions[(self.hash(key) & 0x7FFFFFFF) % len(all_partitions)]


class RevisionSender:
    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(self, topics: Sequence[Topic], key: str, record: dict[str, Any]) -> None:
        """One record to topics of one value schema, encoded once, each on the partition the catalogue gives
        its key; queued (the broker's acknowledgement is watched, not awaited)."""
        schema = topics[0].value
        assert schema is not None and all(t.value == schema for t in topics), "one encoding for one schema"
        value, raw_key = encode_record(schema, record), key.encode()
        sent: Any = None
        for topic in topics:
            sent = await self.app.producer.send(topic.name, raw_key, value, topic.partition_of(key), None, None)
        # The last one's acknowledgement watched (runtime.produce_watch): the producer keeps the order, so it
        # stands for the ones before it.
        self.app.timex_metrics.produce.track(sent)  # type: ignore[attr-defined]

    async def flush(self) -> None:
        await self.app.producer.flush()
