"""The configs the ingestion answered in place (the fast lane decides them: timex_stream.runtime.fast_lane), so that
a config delivered again is not answered twice.

A config is delivered again when the ingestion stopped after answering it and before its offset was committed
(a kill -9, a rebalance). Through the predictors its units would reach the validator again, whose decided markers
drop them; a request decided here never reaches the validator, so the ingestion keeps a marker of its own: under
the request id, where the config was read (partition, offset). A config whose request id is marked is skipped, as
the validator drops what comes for a series it decided: a request id is answered once within the grace window,
whichever way it went.

The markers live in a changelog-backed table written while processing a config (so a marker is on the config's
partition, as its redelivery is), after the answer's records were queued on the same producer (a stop between the
two answers twice, as the validator's window does; never not at all). One is forgotten (a tombstone) once it is
older than `forget_s` (TIMEX_VALIDATOR_FORGET_S, the validator's grace window) and a later config of its
partition is processed: by then its offset is committed. Each method works on the table as a mapping (a dict in
tests); the in-memory index of markers by partition is rebuilt from the table after each recovery (`recover`).

A config can also come twice to one running ingestion: Faust seeks its partitions to the committed offsets after a
recovery and fetches again what it had handed out, and with two configs in hand at once (ingestion.service's
CONCURRENCY) both copies passed the marker check before either was marked: a kill -9 test answered one request
twice, 70 ms apart, in 2 of 3 runs. So a delivery is handled only if it `claim`s its request id: neither marked nor
in hand; the copy in hand answers it (its offset holds the commit back until it is done).
"""

from __future__ import annotations

from collections import deque
from collections.abc import MutableMapping
from typing import Any

from timex_stream.runtime.records import Position


class Answered:
    """The ingestion's markers of configs answered in place, over `table` (the Faust table, a dict in tests)."""

    def __init__(self, table: MutableMapping[str, Any], forget_s: float) -> None:
        self.table = table
        self.forget_ms = round(forget_s * 1000)
        # Per partition, markers in the order they were written: (written at ms, offset, request id).
        self.order: dict[int, deque[tuple[int, int, str]]] = {}
        self.in_hand: set[str] = set()  # request ids of the configs being handled now

    def seen(self, rid: str) -> bool:
        """Whether request `rid` was answered in place already (a redelivery, or the same id sent again)."""
        return rid in self.table

    def claim(self, rid: str) -> bool:
        """Whether to handle this delivery of `rid`: not answered in place already, nor in hand; → True takes it in
        hand until `release`."""
        if self.seen(rid) or rid in self.in_hand:
            return False
        self.in_hand.add(rid)
        return True

    def release(self, rid: str) -> None:
        self.in_hand.discard(rid)

    def mark(self, rid: str, at: Position, now: int) -> None:
        self.table[rid] = {"partition": at.partition, "offset": at.offset, "at": now}
        self.order.setdefault(at.partition, deque()).append((now, at.offset, rid))

    def forget(self, at: Position, now: int) -> int:
        """Delete the markers of `at`'s partition older than the grace window and before `at`; → how many."""
        markers, gone = self.order.get(at.partition), 0
        while markers and markers[0][0] < now - self.forget_ms and markers[0][1] < at.offset:
            _, offset, rid = markers.popleft()
            found = self.table.get(rid)
            if found is not None and (found["partition"], found["offset"]) == (at.partition, offset):
                del self.table[rid]
                gone += 1
        return gone

    def recover(self) -> None:
        """Rebuild the index from the table (after each recovery of its changelog)."""
        self.order.clear()
        found = sorted((m["at"], m["partition"], m["offset"], rid) for rid, m in self.table.items())
        for written, partition, offset, rid in found:
            self.order.setdefault(partition, deque()).append((written, offset, rid))
