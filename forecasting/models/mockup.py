"""TIMEX `mockup`: a deterministic stand-in for tests. As TIMEX's MockUp it forecasts 0 everywhere, or, when
fitted with extra regressors, their number; its intervals are ± 0.5 (80 %) and ± 1 (95 %) around that."""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from forecasting.models.base import LEVELS, ForecastModel, Prediction

_HALF_WIDTH = {80: 0.5, 95: 1.0}


class MockUp(ForecastModel):
    name = "mockup"
    min_points = 1
    takes_regressors = True  # TIMEX's MockUp does: it tells the tests that regressors reached the model

    def fit(self, y: pd.Series, X: pd.DataFrame | None = None) -> Self:
        self._check_length(y)
        X = self._check_regressors(y, X)
        self._columns = [] if X is None else list(X.columns)
        return self

    def predict(self, h: int, levels: tuple[int, ...] = LEVELS, X_future: pd.DataFrame | None = None
                ) -> Prediction:
        self._check_future(h, self._columns, X_future)
        mean = np.full(h, float(len(self._columns)))
        intervals = {lv: (mean - _HALF_WIDTH.get(lv, 1.0), mean + _HALF_WIDTH.get(lv, 1.0)) for lv in levels}
        return Prediction(mean, intervals or None)
