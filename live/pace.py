"""The record rate a standing request takes from its source topic (TIMEX_LIVE_MAX_RECORDS_PER_S): a token
bucket of one second's records, taken in chunks of at least `CHUNK_S` worth (not one record a poll, which
would make one revision per record). Over the rate the follower simply takes fewer records per poll: the rest
wait on the topic (back-pressure), none is dropped, and their points fold into fewer revisions."""

from __future__ import annotations

import time
from collections.abc import Callable

CHUNK_S = 0.2


class Pace:
    def __init__(self, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_s, self.clock = per_s, clock
        self.chunk = max(1, int(per_s * CHUNK_S))
        self.tokens, self.at = per_s, clock()  # a full second's worth at the start

    def allowance(self, most: int) -> int:
        """Records that may be taken now, at most `most` (all of them when there is no limit); 0 until a
        chunk's worth is there."""
        if self.per_s <= 0:
            return most
        now = self.clock()
        self.tokens, self.at = min(self.per_s, self.tokens + (now - self.at) * self.per_s), now
        return min(most, int(self.tokens)) if self.tokens >= min(most, self.chunk) else 0

    def took(self, records: int) -> None:
        if self.per_s > 0:
            self.tokens -= records

    def wait_s(self) -> float:
        """How long until a chunk's worth may be taken."""
        return 0.0 if self.per_s <= 0 else max(0.0, (self.chunk - self.tokens) / self.per_s)
