"""TIMEX `exponentialsmoothing`, on statsmodels' ETSModel (additive errors, so it has intervals).

Automatic choices as in TIMEX: a damped additive trend when the ADF test says the training data are not
trend-stationary, none otherwise. The seasonal period comes from the frequency (TIMEX searches up to
ten ACF peaks, one fit each); with two full seasons, seasonal and non-seasonal fits compete on AICc."""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
import pandas as pd

from forecasting.models.base import LEVELS, ForecastModel, Prediction
from forecasting.seasonality import usable_season

_ADF_SIGNIFICANCE = 0.05


def _trend_stationary(values: np.ndarray) -> bool:
    from statsmodels.tsa.stattools import adfuller

    try:
        return bool(adfuller(values, autolag="AIC")[1] < _ADF_SIGNIFICANCE)
    except (ValueError, np.linalg.LinAlgError):
        return True  # too short or constant: no trend to model


class ExponentialSmoothing(ForecastModel):
    name = "exponentialsmoothing"
    min_points = 4

    def fit(self, y: pd.Series) -> Self:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        self._check_length(y)
        values = np.asarray(y, dtype=float)
        self._trend = None if _trend_stationary(values) else "add"
        season = usable_season(self.season_length, len(values) - 2)
        candidates = [season, 1] if season > 1 else [1]
        best: Any = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for m in candidates:
                # A pandas endog: statsmodels 0.15's get_prediction fails on a bare ndarray.
                model = ETSModel(
                    pd.Series(values),
                    error="add",
                    trend=self._trend,
                    damped_trend=self._trend is not None,
                    seasonal="add" if m > 1 else None,
                    seasonal_periods=m if m > 1 else None,
                )
                fitted = model.fit(disp=False)
                if best is None or fitted.aicc < best[1].aicc:
                    best = (m, fitted)
        self._season, self._fit = best
        self._n = len(values)
        return self

    def predict(self, h: int, levels: tuple[int, ...] = LEVELS) -> Prediction:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not levels:
                return Prediction(np.asarray(self._fit.forecast(h), dtype=float))
            pred = self._fit.get_prediction(start=self._n, end=self._n + h - 1)
            intervals = {}
            for lv in levels:
                frame = pred.summary_frame(alpha=1 - lv / 100)
                intervals[lv] = (
                    np.asarray(frame["pi_lower"], dtype=float),
                    np.asarray(frame["pi_upper"], dtype=float),
                )
            return Prediction(np.asarray(pred.predicted_mean, dtype=float), intervals)

    def params(self) -> dict[str, str]:
        return {
            "trend": "additive damped" if self._trend else "none",
            "seasonal_periods": str(self._season) if self._season > 1 else "none",
        }
