"""Validation metrics on the held-out points.

MAE, MSE, RMSE, AM, SD follow TIMEX's `ValidationPerformance`: AM is the mean of (actual - predicted),
SD the population standard deviation (ddof=0) of the same errors. Added: MAPE and sMAPE (percent),
MASE scaled by the in-sample MAE of the seasonal naive forecast on the training window (lag 1 when the
window is shorter than a season). NaN where a metric is undefined (MAPE with a zero actual, MASE on a
constant training window).
"""

from __future__ import annotations

import math

import numpy as np

METRIC_NAMES: tuple[str, ...] = ("MAE", "MSE", "RMSE", "AM", "SD", "MAPE", "sMAPE", "MASE")


def compute_metrics(
    actual: np.ndarray, predicted: np.ndarray, train: np.ndarray, season_length: int = 1
) -> dict[str, float]:
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    errors = actual - predicted
    abs_errors = np.abs(errors)
    mse = _mean(errors**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = _mean(abs_errors / np.abs(actual)) * 100 if (actual != 0).all() else math.nan
        denom = np.abs(actual) + np.abs(predicted)
        smape_terms = np.where(denom == 0, 0.0, 2 * abs_errors / np.where(denom == 0, 1, denom))
    lag = season_length if len(train) > season_length else 1
    scale = _naive_scale(np.asarray(train, dtype=float), lag)
    mae = _mean(abs_errors)
    am = _mean(errors)
    deviations = errors - am
    return {
        "MAE": mae,
        "MSE": mse,
        "RMSE": math.sqrt(mse),
        "AM": am,
        "SD": math.sqrt(_mean(deviations * deviations)),  # np.std(errors, ddof=0)'s own steps
        "MAPE": mape,
        "sMAPE": _mean(smape_terms) * 100,
        "MASE": mae / scale if scale > 0 else math.nan,
    }


def _mean(values: np.ndarray) -> float:
    """np.mean's arithmetic (its pairwise sum, then one division), without its wrapper: a unit's eight metrics on
    a few held-out points spent more in np.mean's and np.std's Python layers than in the sums."""
    return float(np.add.reduce(values) / values.size) if values.size else math.nan


def _naive_scale(train: np.ndarray, lag: int) -> float:
    if len(train) <= lag:
        return math.nan
    return _mean(np.abs(train[lag:] - train[:-lag]))


def score(metrics: dict[str, float], estimator: str) -> float:
    """The value to minimise for `main_accuracy_estimator` (AM is signed: its size counts)."""
    key = {m.lower(): m for m in METRIC_NAMES}[estimator.lower()]
    value = metrics.get(key, math.nan)
    if value is None or math.isnan(value):
        return math.inf
    return abs(value) if key == "AM" else value
