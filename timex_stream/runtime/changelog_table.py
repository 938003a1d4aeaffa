"""A table kept in memory and in a compacted changelog topic: every write also goes to the topic, on the partition
of the source record it was written for, and `read_partitions` reads a partition's last values back (`load`) when
the service is given that partition (a start, a restart after a kill -9, a rebalance).

Keys and values are JSON, as Faust's tables write them, so the changelog the ingestion wrote as a Faust app is read
back the same way. A write is held until `send` (a mapping's assignment cannot wait for the producer), which the
service calls once a request's own records are sent: on the same producer, so after them and in the same produce
request (ingestion.answered relies on that order).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from aiokafka import AIOKafkaProducer

from timex_stream.runtime.history import read_range


class ChangelogTable(MutableMapping[str, Any]):
    """`partition_of(key, value)`: the changelog partition a write goes to (the source record's)."""

    def __init__(self, topic: str, partition_of: Callable[[str, Any], int]) -> None:
        self.topic, self.partition_of = topic, partition_of
        self.data: dict[str, Any] = {}
        self.where: dict[str, int] = {}  # key → the partition its last write went to
        self.held: list[tuple[bytes, bytes | None, int]] = []  # writes not sent yet
        self.unacked: set[asyncio.Future[Any]] = set()

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        partition = self.partition_of(key, value)
        self.data[key], self.where[key] = value, partition
        self.held.append((json.dumps(key).encode(), json.dumps(value).encode(), partition))

    def __delitem__(self, key: str) -> None:
        del self.data[key]
        self.held.append((json.dumps(key).encode(), None, self.where.pop(key)))  # a tombstone: compaction drops it

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    async def send(self, sink: AIOKafkaProducer) -> None:
        """Send the writes held so far, in the order they were made."""
        held, self.held = self.held, []
        for key, value, partition in held:
            future = await sink.send(self.topic, value=value, key=key, partition=partition)
            self.unacked.add(future)
            future.add_done_callback(self.unacked.discard)

    async def acknowledged(self) -> None:
        """Wait for the writes sent so far (their errors are the producer's to report)."""
        if self.unacked:
            await asyncio.gather(*list(self.unacked), return_exceptions=True)

    def load(self, found: dict[int, dict[str, Any]]) -> None:
        """Take what `read_partitions` found (on the event loop: the table is the loop's)."""
        for partition, values in found.items():
            self.drop([partition])
            for key, value in values.items():
                self.data[key], self.where[key] = value, partition

    def drop(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for key in [k for k, p in self.where.items() if p in gone]:
            del self.data[key], self.where[key]


def read_partitions(bootstrap: str, topic: str, partitions: list[int]) -> dict[int, dict[str, Any]]:
    """Each partition's last value per key, read from the beginning to its end (blocking)."""
    found: dict[int, dict[str, Any]] = {p: {} for p in partitions}
    if not partitions:
        return found  # read_range would read every partition
    for msg in read_range(bootstrap, topic, partitions=partitions):
        key, value = _key(msg.key()), msg.value()
        if value is None:
            found[msg.partition()].pop(key, None)
        else:
            found[msg.partition()][key] = json.loads(value)
    return found


def _key(raw: bytes | None) -> str:
    text = (raw or b"").decode("utf-8", "replace")
    try:
        key = json.loads(text)
    except ValueError:
        return text
    return key if isinstance(key, str) else text
