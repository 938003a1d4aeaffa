"""naive and seasonal_naive: the last value (season) and the residuals' running sum of squares, so the
intervals are statsforecast's (sigma over every residual so far) after any number of points. O(1) a point."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from forecasting.live.models.base import LiveModel, normal_intervals
from forecasting.models.base import ForecastModel, Prediction


class LiveSeasonalNaive(LiveModel):
    """statsforecast SeasonalNaive: y[t] = y[t - m]; sigma² = Σ residuals² / (n - m). m = 1 is Naive."""

    kind = "seasonal_naive"

    def __init__(self, season: list[float], ssq: float, n: int, m: int) -> None:
        self.season, self.ssq, self.n, self.m = list(season), float(ssq), int(n), int(m)

    @classmethod
    def from_fitted(cls, model: ForecastModel, y: np.ndarray) -> Self:
        m = int(getattr(model, "_season", 1))
        values = np.asarray(y, dtype=float)
        residuals = values[m:] - values[:-m]
        return cls(values[-m:].tolist(), float(np.sum(residuals**2)), len(values), m)

    def fork(self) -> Self:
        return self.shallow_copy()  # update rebinds `season`, `ssq` and `n`: nothing shared is changed

    def update(self, values: Sequence[float]) -> None:
        for value in values:
            self.ssq += (float(value) - self.season[0]) ** 2
            self.season = self.season[1:] + [float(value)]
            self.n += 1

    def _sigma(self) -> float:
        dof = self.n - self.m
        return math.sqrt(self.ssq / dof) if dof > 0 else 0.0  # np.sqrt's bits (IEEE sqrt), without numpy

    def _predict(self, h: int, levels: tuple[int, ...]) -> Prediction:
        positions, growth = _steps(h, self.m)
        mean = np.asarray(self.season, dtype=float)[positions]
        return normal_intervals(mean, self._sigma() * growth, levels)

    def state(self) -> dict[str, Any]:
        return {"season": self.season, "ssq": self.ssq, "n": self.n, "m": self.m}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        return cls(state["season"], state["ssq"], state["n"], state["m"])


@functools.lru_cache(maxsize=64)
def _steps(h: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Each of the h steps' position in the last season and its sigma's growth, sqrt(seasons ahead): the same
    for every series of a horizon and season, so computed once (read-only)."""
    steps = np.arange(h)
    positions, growth = steps % m, np.sqrt(steps // m + 1)
    positions.flags.writeable = growth.flags.writeable = False
    return positions, growth


class LiveNaive(LiveSeasonalNaive):
    """statsforecast Naive: the last value; sigma² = Σ (y[t] - y[t-1])² / (n - 1)."""

    kind = "naive"

    @classmethod
    def from_fitted(cls, model: ForecastModel, y: np.ndarray) -> Self:
        values = np.asarray(y, dtype=float)
        return cls([float(values[-1])], float(np.sum(np.diff(values) ** 2)), len(values), 1)
