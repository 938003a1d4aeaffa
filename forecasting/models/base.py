"""The common model interface, in statsforecast's style: construct with the season length, then
`fit(y, X)` and `predict(h, levels, X_future)`. Heavy libraries are imported inside the models, so that the
registry (and the config validator) stay cheap to import.

Regressors: a model with `takes_regressors = True` accepts `X` (y's index, one column per regressor) in
`fit` and then needs `X_future` (exactly `h` rows, the same columns) in `predict`; the others are never
given any (forecasting.units passes X only to models that take it)."""

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
    takes_regressors: ClassVar[bool] = False

    def __init__(self, season_length: int = 1, options: dict[str, Any] | None = None) -> None:
        self.season_length = season_length
        self.options = options or {}

    @abstractmethod
    def fit(self, y: pd.Series, X: pd.DataFrame | None = None) -> Self:
        """`y`: the (transformed) training values with a regular DatetimeIndex; `X`: regressors on y's index
        (only for models that take them)."""

    @abstractmethod
    def predict(self, h: int, levels: tuple[int, ...] = LEVELS, X_future: pd.DataFrame | None = None
                ) -> Prediction:
        """The next `h` values; `levels=()` when no intervals are needed (cheaper for some models);
        `X_future`: the regressors' values at those `h` steps, when the fit had regressors."""

    def params(self) -> dict[str, str]:
        """Human-readable choices the fit made (order, components, season length)."""
        return {}

    def _check_regressors(self, y: pd.Series, X: pd.DataFrame | None) -> pd.DataFrame | None:
        """X as the fit uses it: None when empty; an error when the model takes none or X does not match y."""
        if X is None or X.shape[1] == 0:
            return None
        if not self.takes_regressors:
            raise ValueError(f"model '{self.name}' takes no regressors")
        if len(X) != len(y):
            raise ValueError(f"{len(X)} rows of regressors for {len(y)} training points")
        if not np.all(np.isfinite(X.to_numpy(dtype=float))):
            raise ValueError("the regressors have missing or infinite values in the training points")
        return X

    def _check_future(self, h: int, columns: list[str], X_future: pd.DataFrame | None) -> np.ndarray | None:
        """X_future's values in the fit's column order; an error when the fit had regressors and these do not
        give them for the `h` steps."""
        if not columns:
            return None
        if X_future is None:
            raise ValueError(f"model '{self.name}' was fitted with regressors: their future values are needed")
        missing = [c for c in columns if c not in X_future.columns]
        if missing:
            raise ValueError(f"no future values for the regressors {', '.join(map(repr, missing))}")
        if len(X_future) != h:
            raise ValueError(f"{len(X_future)} future rows of regressors for {h} steps")
        values = X_future[columns].to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            raise ValueError("the regressors have missing or infinite values in the forecast horizon")
        return values

    @staticmethod
    def _values(y: pd.Series) -> np.ndarray:
        """`y`'s values as floats (np.asarray goes through pandas' `__array__`: ~5 µs, a naive fit's tenth)."""
        return y.to_numpy(dtype=float) if isinstance(y, pd.Series) else np.asarray(y, dtype=float)

    def _check_length(self, y: pd.Series) -> None:
        if len(y) < self.min_points:
            raise ValueError(
                f"model '{self.name}' needs at least {self.min_points} training points, got {len(y)}"
            )
