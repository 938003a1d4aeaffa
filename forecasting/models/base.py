"""The common model interface, in statsforecast's style: construct with the season length, then
`fit(y)` and `predict(h, levels)`. Heavy libraries are imported inside the models, so that the registry
(and the config validator) stay cheap to import."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

LEVELS: tuple[int, ...] = (80, 95)


@dataclass
class Prediction:
    mean: np.ndarray
    # level -> (lower, upper); None when the model gives no intervals (or none were asked for)
    intervals: dict[int, tuple[np.ndarray, np.ndarray]] | None = None


class ForecastModel(ABC):
    name: ClassVar[str] = ""
    min_points: ClassVar[int] = 2

    def __init__(self, season_length: int = 1, options: dict[str, Any] | None = None) -> None:
        self.season_length = season_length
        self.options = options or {}

    @abstractmethod
    def fit(self, y: pd.Series) -> Self:
        """`y`: the (transformed) training values with a regular DatetimeIndex."""

    @abstractmethod
    def predict(self, h: int, levels: tuple[int, ...] = LEVELS) -> Prediction:
        """The next `h` values; `levels=()` when no intervals are needed (cheaper for some models)."""

    def params(self) -> dict[str, str]:
        """Human-readable choices the fit made (order, components, season length)."""
        return {}

    def _check_length(self, y: pd.Series) -> None:
        if len(y) < self.min_points:
            raise ValueError(
                f"model '{self.name}' needs at least {self.min_points} training points, got {len(y)}"
            )
