"""Set-up of the processes that run units (the core's pool and the predictor's)."""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def init_worker() -> None:
    """One BLAS thread per process: parallelism is one process per unit, and multi-threaded OpenBLAS on
    these small matrices spins instead of working (measured: Holt-Winters fits 0.15-0.3 s → 0.01-0.03 s,
    about half the CPU of a whole request)."""
    threadpool_limits(limits=1)
    import forecasting.models  # noqa: F401 - load the model libraries once per worker, not per unit
