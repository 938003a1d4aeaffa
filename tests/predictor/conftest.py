"""Real worker pools for the predictor tests, started like the service starts its own, killed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from predictor.pool import Limits, UnitPool, forkserver_context
from predictor.work import start_worker

# What the service preloads in its fork server: the workers start with the model libraries imported.
PRELOAD = ["predictor.orphan_guard", "predictor.pool", "predictor.work"]


@pytest.fixture
def make_pool() -> Iterator[Callable[..., UnitPool]]:
    pools: list[UnitPool] = []

    def make(size: int = 1, memory_mb: int = 1024, timeout_s: float = 120.0) -> UnitPool:
        pool = UnitPool(size, Limits(memory_mb=memory_mb, timeout_s=timeout_s), forkserver_context(PRELOAD),
                        start_worker)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()
