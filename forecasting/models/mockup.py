"""TIMEX `mockup`: a deterministic stand-in for tests. Like TIMEX's MockUp without extra regressors it
forecasts 0 everywhere; its intervals are 0 ± 0.5 (80 %) and 0 ± 1 (95 %)."""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from forecasting.models.base import LEVELS, ForecastModel, Prediction

_HALF_WIDTH = {80: 0.5, 95: 1.0}


class MockUp(ForecastModel):
    name = "mockup"
    min_points = 1

    def fit(self, y: pd.Series) -> Self:
        self._check_length(y)
        return self

    def predict(self, h: int, levels: tuple[int, ...] = LEVELS) -> Prediction:
        mean = np.zeros(h)
        intervals = {lv: (mean - _HALF_WIDTH.get(lv, 1.0), mean + _HALF_WIDTH.get(lv, 1.0)) for lv in levels}
        return Prediction(mean, intervals or None)
