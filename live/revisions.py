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

import asyncio
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
        return all_partitions[self.partition(key, len(all_partitions))]

    def partition(self, key: bytes, partitions: int) -> int:
        """The partition of `key` among `partitions` (numbered from 0)."""
        return (self.hash(key) & 0x7FFFFFFF) % partitions


class RevisionSender:
    """Revisions appended to one open aiokafka batch per partition (`create_batch`/`send_batch`, aiokafka's public
    API): a record sent through `producer.send` costs a coroutine, a future and its resolution and Faust's sensor
    hooks each (an eighth of the live service's CPU at 2,000 observations/s under bench/live.py); in a batch it
    costs its bytes. A partition's batch is shipped at the end of a revise pass (`ship`, the follower's
    checkpoint) if the one before it is acknowledged, else as soon as that one is: aiokafka takes one batch per
    partition at a time (a second `send_batch` waits until the first is on its way, stalling the pass), and one
    produce request per broker is in flight anyway (idempotence). Its Kafka timestamp is when it was appended."""

    def __init__(self, app: faust.App, partitioner: KeyHashPartitioner) -> None:
        self.app, self.partitioner = app, partitioner
        self.open: dict[tuple[str, int], Any] = {}  # (topic, partition) → the batch being filled
        self.unacked: dict[tuple[str, int], asyncio.Future[Any]] = {}  # the last batch shipped, until acknowledged
        self.later: set[asyncio.Task[None]] = set()  # ships started by an acknowledgement (held: weak refs)

    async def send(self, topics: Sequence[Topic], key: str, record: dict[str, Any]) -> None:
        """One record to topics of one value schema, encoded once, each on the partition the catalogue gives
        its key; appended to that partition's open batch."""
        schema = topics[0].value
        assert schema is not None and all(t.value == schema for t in topics), "one encoding for one schema"
        value, raw_key = encode_record(schema, record), key.encode()
        for topic in topics:
            # Always a partition: a batch sent without one goes where aiokafka's partitioner puts a keyless
            # record (anywhere), and a series' revisions would be spread over the partitions, out of order.
            partition = topic.partition_of(key)
            where = (topic.name, self.partitioner.partition(raw_key, topic.partitions) if partition is None
                     else partition)
            while True:  # another follower may ship this partition's batch while this one waits to ship it
                batch = self.open.get(where)
                fresh = batch is None
                if fresh:
                    batch = self.open[where] = self.app.producer.create_batch()  # type: ignore[attr-defined]
                if batch.append(key=raw_key, value=value, timestamp=None) is not None:
                    break
                if fresh:
                    del self.open[where]
                    raise ValueError(f"a {schema} record of {len(value):,} bytes is larger than a batch")
                await self._ship(where)  # full (REVISION_BATCH_BYTES): shipped now, and the record goes to a new one

    async def ship(self) -> None:
        """Ship every open batch whose partition has no batch waiting for its acknowledgement (the others go when
        it comes), and let the producer's sender run: it is on this loop too, as are the other followers."""
        for where in list(self.open):
            if where not in self.unacked:
                await self._ship(where)
        await asyncio.sleep(0)

    async def _ship(self, where: tuple[str, int]) -> None:
        batch = self.open.pop(where, None)
        if batch is None:
            return  # shipped meanwhile
        batch.close()
        sent = await self.app.producer.send_batch(batch, *where)  # type: ignore[attr-defined]
        self.unacked[where] = sent
        sent.add_done_callback(functools.partial(self._acked, where))
        # Watched (runtime.produce_watch): a batch the brokers refuse is counted and said once.
        self.app.timex_metrics.produce.track(sent)  # type: ignore[attr-defined]

    def _acked(self, where: tuple[str, int], sent: asyncio.Future[Any]) -> None:
        if self.unacked.get(where) is sent:
            del self.unacked[where]
        if where in self.open:  # filled meanwhile: its turn now
            task = asyncio.ensure_future(self._ship(where))
            self.later.add(task)
            task.add_done_callback(self.later.discard)

    async def flush(self) -> None:
        """Everything appended so far written: each partition's batches in order."""
        while self.open or self.unacked:
            await self.ship()
            if self.unacked:
                await asyncio.wait(list(self.unacked.values()))
        await self.app.producer.flush()
