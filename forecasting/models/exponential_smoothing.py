"""TIMEX `exponentialsmoothing`: statsmodels' Holt-Winters, chosen the way TIMEX 1.2.3 chooses it.

Candidate seasonal periods are the (up to ten) strongest autocorrelation lags above the 99 % band (not
the frequency's season: on the bench, adding it lost as often as it won). Each candidate is fitted on the
training data minus its last 10 % and scored by MAE on that 10 % (TIMEX switches to MSE when the main
accuracy estimator is not MAE; models here do not see the config); the winner is refitted on everything.
The trend is a damped additive one when the ADF test says the data are not trend-stationary, none
otherwise. When there is no candidate, or no candidate can be fitted, the model is non-seasonal.

Extra regressors (the multivariate stage's, or `additional_regressors`): regression with Holt-Winters errors,
as `arima` is regression with ARIMA errors. The series is regressed by least squares on an intercept and the
regressors (their values at the same timestamps, untransformed, as TIMEX passes them); the residuals get the
Holt-Winters model chosen as above; the forecast is the regression on the regressors' future values plus the
residuals' forecast. Deviation from TIMEX 1.2.3, whose ExponentialSmoothingModel accepts `extra_regressors`
and ignores them: its multivariate stage re-runs ES alone, with the transformation stored for the series in a
dict that `dict.fromkeys(models, {})` shares between models (so the last model's choice), and keeps the re-run
only when its MAE is lower. Any "gain" it shows there comes from that transformation, not from the regressors.

Holt-Winters has no analytic intervals: they are quantiles of simulated future paths (additive normal
errors with the fit's residual variance), with a fixed seed so a forecast is reproducible."""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
import pandas as pd

from forecasting.models.base import LEVELS, ForecastModel, Prediction

_ADF_SIGNIFICANCE = 0.05
_Z99 = 2.5758293035489004  # two-sided 99 % normal quantile: TIMEX's ACF significance band
_MAX_PERIODS = 10
_HOLDOUT_FRACTION = 0.1
_SIMULATIONS = 1000
_SEED = 0


def _trend_stationary(values: np.ndarray) -> bool:
    from statsmodels.tsa.stattools import adfuller

    try:
        return bool(adfuller(values, autolag="AIC")[1] < _ADF_SIGNIFICANCE)
    except (ValueError, np.linalg.LinAlgError):
        return True  # too short or constant: no trend to model


def candidate_periods(values: np.ndarray) -> list[int]:
    """ACF lags >= 2 above the 99 % band, strongest first (at most ten)."""
    from statsmodels.tsa.stattools import acf

    n = len(values)
    nlags = int(round(n / 2 - 1))
    if nlags < 2 or np.ptp(values) == 0:
        return []
    corr = acf(values, nlags=nlags, fft=True)
    lags = [lag for lag in range(2, nlags + 1) if corr[lag] > _Z99 / np.sqrt(n)]
    return sorted(lags, key=lambda lag: -corr[lag])[:_MAX_PERIODS]


def _holt_winters(values: np.ndarray, trend: bool, period: int | None, brute: bool = True) -> Any:
    """SLSQP: the default of the statsmodels TIMEX 1.2.3 runs on (0.13), and ~1.5x faster than the newer
    default. `brute`, statsmodels' grid of starting values, improves the final fit; ranking the candidate
    periods gives the same winners on the bench without it, at ~1/4 of the cost."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing as HoltWinters

    model = HoltWinters(
        values,
        trend="add" if trend else None,
        damped_trend=trend,
        seasonal="add" if period else None,
        seasonal_periods=period,
        initialization_method="estimated",
    )
    return model.fit(method="SLSQP", use_brute=brute)


def _regression(values: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of `values` on an intercept and X's columns (minimum norm when the
    regressors are collinear, as extra regressors found by cross-correlation often are)."""
    design = np.column_stack([np.ones(len(X)), X])
    return np.linalg.lstsq(design, values, rcond=None)[0]


class ExponentialSmoothing(ForecastModel):
    name = "exponentialsmoothing"
    min_points = 4
    takes_regressors = True  # regression with Holt-Winters errors (see the module's docstring)

    def fit(self, y: pd.Series, X: pd.DataFrame | None = None) -> Self:
        self._check_length(y)
        X = self._check_regressors(y, X)
        self._columns = [] if X is None else list(X.columns)
        values = self._values(y)
        self._beta = None
        if X is not None:
            self._beta = _regression(values, X.to_numpy(dtype=float))
            values = values - self._regressed(X.to_numpy(dtype=float))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._period, self._trend = self._choose(values)
            self._fit = _holt_winters(values, self._trend, self._period)
        return self

    def _choose(self, values: np.ndarray) -> tuple[int | None, bool]:
        """(seasonal period or None, damped trend?) as TIMEX picks them."""
        holdout = int(round(_HOLDOUT_FRACTION * len(values)))
        periods = candidate_periods(values)
        if not periods or holdout < 1:
            return None, not _trend_stationary(values)
        train, test = values[:-holdout], values[-holdout:]
        trend = not _trend_stationary(train)
        errors: dict[int, float] = {}
        for period in periods:
            try:
                forecast = _holt_winters(train, trend, period, brute=False).forecast(holdout)
            except (ValueError, np.linalg.LinAlgError):
                continue  # e.g. fewer than two seasons in the training part
            if np.all(np.isfinite(forecast)):
                errors[period] = float(np.mean(np.abs(test - forecast)))
        if not errors:
            return None, not _trend_stationary(values)
        return min(errors, key=lambda p: errors[p]), trend

    def _regressed(self, X: np.ndarray) -> np.ndarray:
        assert self._beta is not None
        return self._beta[0] + X @ self._beta[1:]

    def predict(self, h: int, levels: tuple[int, ...] = LEVELS, X_future: pd.DataFrame | None = None
                ) -> Prediction:
        future = self._check_future(h, self._columns, X_future)
        offset = np.zeros(h) if future is None else self._regressed(future)
        mean = np.asarray(self._fit.forecast(h), dtype=float) + offset
        if not levels:
            return Prediction(mean)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            paths = np.asarray(
                self._fit.simulate(h, repetitions=_SIMULATIONS, error="add", anchor="end", random_state=_SEED)
            ).reshape(h, -1) + offset[:, None]
        if not np.all(np.isfinite(paths)):
            return Prediction(mean)  # too few points for a residual variance (statsmodels gives NaN)
        intervals = {}
        for lv in levels:
            tail = (100 - lv) / 2
            lo, hi = np.percentile(paths, [tail, 100 - tail], axis=1)
            # Simulated quantiles can miss a point forecast by a hair: keep the band around it.
            intervals[lv] = (np.minimum(lo, mean), np.maximum(hi, mean))
        return Prediction(mean, intervals)

    def params(self) -> dict[str, str]:
        params = {
            "trend": "additive damped" if self._trend else "none",
            "seasonal_periods": str(self._period) if self._period else "none",
        }
        if self._beta is not None:
            params["regression"] = ", ".join(f"{c}: {b:.6g}" for c, b in zip(["intercept", *self._columns],
                                                                              self._beta, strict=True))
        return params
