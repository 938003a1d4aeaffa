"""Offsets committed in order while records are handled several at a time (at least once).

A record's offset may be committed only once it and every record fetched before it on its partition are handled:
a stop then loses nothing, and a record handled twice is the worst case (the ingestion's markers answer such a
config once: ingestion.answered). `InOrder` keeps, per partition, the offsets taken in fetch order and whether each
is done; `done` says how far the partition may be committed. Thread-safe: the consumer's thread takes, the event
loop's handlers finish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable


class InOrder:
    def __init__(self) -> None:
        self._pending: dict[int, dict[int, bool]] = {}  # partition → offset → done, in fetch order
        self._changed = threading.Condition()

    def taken(self, partition: int, offset: int) -> None:
        with self._changed:
            self._pending.setdefault(partition, {})[offset] = False

    def done(self, partition: int, offset: int) -> int | None:
        """Mark the record handled; → the offset to commit (the next one to read) when the partition's first pending
        records are all done now, else None."""
        with self._changed:
            pending = self._pending.get(partition)
            if pending is None or offset not in pending:
                return None  # its partition was revoked meanwhile: another consumer reads it again
            pending[offset] = True
            commit = None
            for first in list(pending):
                if not pending[first]:
                    break
                del pending[first]
                commit = first + 1
            self._changed.notify_all()
            return commit

    def in_hand(self, partitions: Iterable[int] | None = None) -> int:
        with self._changed:
            wanted = self._pending if partitions is None else {p: self._pending.get(p, {}) for p in partitions}
            return sum(not done for pending in wanted.values() for done in pending.values())

    def wait_handled(self, partitions: Iterable[int] | None, timeout: float) -> bool:
        """Wait until no record of `partitions` (None: any) is in hand; → False if `timeout` passed first."""
        wanted = None if partitions is None else list(partitions)
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.in_hand(wanted):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget revoked partitions (their records come again to whoever reads them next)."""
        with self._changed:
            for p in partitions:
                self._pending.pop(p, None)
            self._changed.notify_all()
