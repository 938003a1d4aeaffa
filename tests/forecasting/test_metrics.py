"""Validation metrics: TIMEX's definitions, computed without numpy's mean/std wrappers but to the same bits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting.metrics import compute_metrics


def _by_numpy(actual: np.ndarray, predicted: np.ndarray, train: np.ndarray, season: int) -> dict[str, float]:
    """The metrics as np.mean and np.std compute them (what compute_metrics did before it dropped their wrappers)."""
    errors = actual - predicted
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = float(np.mean(np.abs(errors) / np.abs(actual)) * 100) if np.all(actual != 0) else math.nan
        denom = np.abs(actual) + np.abs(predicted)
        smape = float(np.mean(np.where(denom == 0, 0.0, 2 * np.abs(errors) / np.where(denom == 0, 1, denom))) * 100)
    lag = season if len(train) > season else 1
    scale = float(np.mean(np.abs(train[lag:] - train[:-lag]))) if len(train) > lag else math.nan
    mae, mse = float(np.mean(np.abs(errors))), float(np.mean(errors**2))
    return {"MAE": mae, "MSE": mse, "RMSE": math.sqrt(mse), "AM": float(np.mean(errors)),
            "SD": float(np.std(errors, ddof=0)), "MAPE": mape, "sMAPE": smape,
            "MASE": mae / scale if scale > 0 else math.nan}


@pytest.mark.parametrize("seed", range(4))
def test_metrics_are_numpys_to_the_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for case in range(2000):
        n, size = int(rng.integers(1, 40)), 10 ** rng.uniform(-3, 6)
        actual = rng.normal(0, 1, n) * size
        predicted = actual + rng.normal(0, 1, n) * size * rng.uniform(0, 1)
        train = rng.normal(0, 1, int(rng.integers(1, 300))) * size
        if case % 7 == 0:
            actual[0] = 0.0  # MAPE undefined
        if case % 11 == 0:
            predicted[:] = actual  # no error at all
        if case % 13 == 0:
            train[:] = 5.0  # a constant window: MASE undefined
        season = int(rng.integers(1, 30))
        got, expected = compute_metrics(actual, predicted, train, season), _by_numpy(actual, predicted, train, season)
        assert got.keys() == expected.keys()
        for name, value in expected.items():
            assert got[name] == value or (math.isnan(got[name]) and math.isnan(value)), (case, name)
