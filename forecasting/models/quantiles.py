"""statsforecast's normal quantiles, remembered: every interval of a statsforecast model (the units' fits and
refits, the live models) asks `utils._quantiles` for the same two levels, and each call freezes a scipy
distribution (0.5-2 ms: about a tenth of a trivial request's model work, most of a live ETS forecast's)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

STATSFORECAST_QUANTILES = "2.1.1"  # the version whose private `utils._quantiles` is wrapped below
_done = False  # set once the wrapper is in place (or known not to apply): later calls return at once


def cache_normal_quantiles() -> None:
    """Make statsforecast's `utils._quantiles` remember its normal-distribution answers: it freezes a scipy
    distribution on each call, and its answer depends on the levels alone. Same values; other distributions are
    passed through. Idempotent, and a getattr once done (each statsforecast model's `predict` calls it).

    It replaces a private function, so only on the version it was written for (`STATSFORECAST_QUANTILES`);
    on any other the call does nothing (same values, slower). Upstream source, no issue filed there:
    https://github.com/Nixtla/statsforecast/blob/v2.1.1/python/statsforecast/utils.py (`_quantiles`)."""
    global _done
    if _done:
        return
    import statsforecast
    from statsforecast import utils

    _done = True
    if statsforecast.__version__ != STATSFORECAST_QUANTILES:
        return
    original = utils._quantiles
    if getattr(original, "cached", False):
        return

    @functools.lru_cache(maxsize=32)
    def normal(levels: tuple[float, ...]) -> np.ndarray:
        return original(np.asarray(levels))

    def quantiles(level: Any, distribution: str = "normal", dist_params: Any = None) -> np.ndarray:
        if distribution == "normal" and dist_params is None:
            return normal(tuple(np.asarray(level, dtype=float).ravel().tolist())).copy()
        return original(level, distribution=distribution, dist_params=dist_params)

    quantiles.cached = True  # type: ignore[attr-defined]
    utils._quantiles = quantiles
