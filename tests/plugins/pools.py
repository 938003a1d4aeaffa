"""Real unit pools (timex_stream.runtime.pool) for the pool's and the predictor's tests, started like the predictor
starts its own, killed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from predictor.service import PRELOAD
from timex_stream.runtime.pool import Limits, UnitPool, forkserver_context, start_model_worker


@pytest.fixture
def make_pool() -> Iterator[Callable[..., UnitPool]]:
    pools: list[UnitPool] = []

    def make(size: int = 1, memory_mb: int = 1024, timeout_s: float = 120.0, nice: int = 0) -> UnitPool:
        pool = UnitPool(size, Limits(memory_mb=memory_mb, timeout_s=timeout_s, nice=nice),
                        forkserver_context(PRELOAD), start_model_worker)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()
