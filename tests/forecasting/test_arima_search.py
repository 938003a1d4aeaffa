"""The ARIMA search on long series (> 150 points, where it searches by CSS and refits the best exactly)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.models import get_model_class
from forecasting.models.statsforecast_models import _EXACT_SEARCH_MAX_POINTS
from tests.plugins.core_series import random_walk, seasonal_series

LONG = 180  # 15 years of months: past the exact-search threshold, still quick to fit


def _monthly(values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=pd.date_range("1990-01-01", periods=len(values), freq="MS"), name="y")


def _fit(series: pd.Series):  # noqa: ANN202 - the model class is looked up by name
    return get_model_class("arima")(season_length=12).fit(series)


def test_long_series_take_the_approximate_search() -> None:
    assert LONG > _EXACT_SEARCH_MAX_POINTS


def test_long_seasonal_series_gets_seasonal_terms_and_beats_the_last_year_repeated() -> None:
    series = seasonal_series(LONG + 12, seed=4)
    train, test = series.iloc[:-12], series.iloc[-12:].to_numpy()
    model = _fit(train)
    assert model.params()["order"].endswith("[12]")
    mae = np.mean(np.abs(model.predict(12, ()).mean - test))
    last_year = np.mean(np.abs(train.to_numpy()[-12:] - test))
    assert mae < last_year


def test_long_non_seasonal_series_gets_no_seasonal_terms() -> None:
    walk = _monthly(random_walk(LONG).to_numpy())
    assert "[12]" not in _fit(walk).params()["order"]
    ar1 = np.zeros(LONG)
    noise = np.random.default_rng(5).normal(0, 1, LONG)
    for i in range(1, LONG):
        ar1[i] = 0.6 * ar1[i - 1] + noise[i]
    assert "[12]" not in _fit(_monthly(10 + ar1)).params()["order"]


def test_long_series_search_is_deterministic() -> None:
    series = seasonal_series(LONG, seed=6)
    first, second = _fit(series), _fit(series.copy())
    assert first.params() == second.params()
    a, b = first.predict(12), second.predict(12)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert a.intervals is not None and b.intervals is not None
    np.testing.assert_array_equal(a.intervals[95][0], b.intervals[95][0])
