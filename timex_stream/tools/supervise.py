"""How `make up` supervises its services: a service that exits is started again after a backoff, and one
that keeps exiting is a crash loop that stops the stack. Pure policy here; `timex_stream.tools.stack`
carries it out."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

BASE_DELAY_S = 1.0  # the first restart's wait; each exit in the window doubles it
MAX_DELAY_S = 30.0


@dataclass
class Restarts:
    """Exit times per service, kept for `window_s`: an exit that would make more than `max_restarts`
    restarts within the window is a crash loop; before that, restart after BASE_DELAY_S × 2^(exits before
    this one in the window), at most MAX_DELAY_S."""

    max_restarts: int
    window_s: float
    exits: dict[str, deque[float]] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)  # restarts since the stack started: TIMEX_RESTARTS

    def after_exit(self, name: str, now: float) -> float | None:
        """Seconds to wait before starting `name` again, or None: a crash loop (stop the stack)."""
        recent = self.exits.setdefault(name, deque())
        while recent and now - recent[0] > self.window_s:
            recent.popleft()
        recent.append(now)
        if len(recent) > self.max_restarts:
            return None
        self.total[name] = self.total.get(name, 0) + 1
        return min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (len(recent) - 1))

    def crash_loop(self, name: str) -> str:
        return (f"{name} exited {len(self.exits.get(name, ()))} times within {self.window_s:g} s: a crash loop "
                f"(TIMEX_SUPERVISOR_MAX_RESTARTS={self.max_restarts}); stopping")
