"""Writes the brokers do not acknowledge: one WARN line per episode and a gauge while it lasts.

The services' producers are `acks=all` and idempotent, so aiokafka never drops a batch: when the brokers refuse
writes (two brokers of three down: fewer in-sync replicas than `min.insync.replicas`, NOT_ENOUGH_REPLICAS) or a
partition has no reachable leader, it retries until the write lands, and the service waits. That is the wanted
behaviour, but it was silent but for aiokafka's own WARN line on every retried batch (ten a second per broker
connection). Here every send the service makes is tracked until acknowledged; once the oldest has waited
REFUSED_AFTER_S, the service says so once (how long, how many records, the brokers' last answer) and sets
`timex_produce_refused` to 1; when the writes land again it says after how long and sets it back to 0.
aiokafka's per-retry lines are kept out of the log and counted (`timex_produce_retries`); the last one is
quoted in the episode's line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

REFUSED_AFTER_S = 5.0  # a write unacknowledged this long: an episode (a leader move takes ~1-6 s, no episode)
_AIOKAFKA_SENDER = "aiokafka.producer.sender"  # logs "Got error produce response ..." per retried batch
log = logging.getLogger(__name__)


class _RetryLines(logging.Handler):
    """Keeps the last of aiokafka's retry lines (quoted in the episode's WARN line) and counts them."""

    def __init__(self, retries: Counter) -> None:
        super().__init__(logging.WARNING)
        self.retries = retries
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()[:300]
        self.retries.inc()


class ProduceWatch:
    def __init__(self, registry: CollectorRegistry, after_s: float = REFUSED_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.after_s = after_s
        self.clock = clock
        self.refused = Gauge("timex_produce_refused", "1 while this service's writes go unacknowledged longer "
                             f"than {after_s:g} s (brokers refusing or unreachable), else 0", registry=registry)
        self.episodes = Counter("timex_produce_refused_episodes", "times writes went unacknowledged that long",
                                registry=registry)
        self.retries = Counter("timex_produce_retries", "produce requests the brokers refused and the producer "
                               "sent again", registry=registry)
        self.lines = _RetryLines(self.retries)
        self._sent_at: dict[int, float] = {}  # id of a pending send's future → when it was sent
        self._since: float | None = None  # start of the episode under way

    def install(self) -> None:
        """Take aiokafka's per-retry lines (the process' one producer logger) out of the log, into this watch."""
        sender = logging.getLogger(_AIOKAFKA_SENDER)
        sender.handlers = [h for h in sender.handlers if not isinstance(h, _RetryLines)] + [self.lines]
        sender.propagate = False

    def track(self, sent: Any) -> asyncio.Future[Any]:
        """Watch a send until the broker acknowledges it (or it fails); returns the same future."""
        future = asyncio.ensure_future(sent)
        key = id(future)
        self._sent_at[key] = self.clock()
        future.add_done_callback(lambda _: self._sent_at.pop(key, None))
        return future

    def check(self) -> None:
        """Called every second or so: start or end an episode."""
        now = self.clock()
        waited = now - min(self._sent_at.values(), default=now)
        if self._since is None and waited >= self.after_s:
            self._since = now - waited
            self.refused.set(1)
            self.episodes.inc()
            log.warning("writes to Kafka not acknowledged for %.0f s (%d records waiting; the brokers' last answer: "
                        "%s): fewer in-sync replicas than min.insync.replicas, or no reachable leader; waiting, "
                        "nothing is dropped", waited, len(self._sent_at), self.lines.last or "none")
        elif self._since is not None and waited < self.after_s:
            log.warning("writes to Kafka acknowledged again after %.0f s", now - self._since)
            self._since = None
            self.refused.set(0)
