"""Per-user token buckets, in memory per gateway process: `rate` tokens a second up to `burst` saved up.

Keyed by the authenticated user, or by the client address when the gateway runs without tokens (behind a
proxy that is the proxy's address: X-Forwarded-For is not trusted). Several gateway replicas each allow the
rate, so the cluster-wide limit is replicas × rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.auth import protected, user_of
from gateway.inputs import ApiError, is_dry_run

MAX_KEYS = 10_000  # beyond this many callers, the idle (full) buckets are forgotten


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, max(1, burst), clock
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def wait_s(self, key: str) -> float:
        """Take one token for `key`: 0.0 if there was one, else how long until there will be (nothing taken)."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.burst]
        for key in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]


def retry_after(wait_s: float) -> str:
    """The Retry-After header: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))


def rate_limited(writes: RateLimiter, reads: RateLimiter) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Submissions and re-forecasts (POSTs that reach Kafka) take from `writes`; every other /api call
    (reads, dry runs, an SSE stream when it opens) from the looser `reads`. Over the limit → 429 + Retry-After."""
    @web.middleware
    async def limit(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        if protected(request):
            write = request.method == "POST" and not is_dry_run(request)
            limiter = writes if write else reads
            user = user_of(request)
            wait = limiter.wait_s(f"user:{user}" if user is not None else f"addr:{request.remote}")
            if wait > 0:
                what = "submissions and re-forecasts" if write else "API calls"
                raise ApiError(429, f"too many {what}: at most {limiter.rate:g} a second (bursts of "
                                    f"{limiter.burst}) per {'user' if user is not None else 'client'}; "
                                    f"retry in {retry_after(wait)} s", None,
                               headers={"Retry-After": retry_after(wait)})
        return await handler(request)

    return limit
