from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.models import MODELS, get_model_class
from forecasting.models.names import KNOWN_MODELS
from forecasting.selection import choose_best
from forecasting.units import UnitSpec, plan_units, run_unit

from .conftest import make_config, random_walk, seasonal_series

FAST_MODELS = ["arima", "exponentialsmoothing", "persistence", "naive", "seasonal_naive", "theta", "autoets"]


def test_registry_matches_the_config_keywords() -> None:
    assert tuple(MODELS) == KNOWN_MODELS
    with pytest.raises(ValueError, match="not available in this build"):
        get_model_class("lstm")
    with pytest.raises(ValueError, match="unknown model 'prophett'; known: fbprophet, arima"):
        get_model_class("prophett")


@pytest.mark.parametrize("name", FAST_MODELS + ["mockup"])
def test_every_model_forecasts_with_ordered_intervals(name: str) -> None:
    series = seasonal_series(60)
    model = get_model_class(name)(season_length=12).fit(series)
    pred = model.predict(8)
    assert pred.mean.shape == (8,) and np.all(np.isfinite(pred.mean))
    assert pred.intervals is not None and set(pred.intervals) == {80, 95}
    lo80, hi80 = pred.intervals[80]
    lo95, hi95 = pred.intervals[95]
    assert np.all(lo95 <= lo80 + 1e-9) and np.all(lo80 <= pred.mean + 1e-9)
    assert np.all(pred.mean <= hi80 + 1e-9) and np.all(hi80 <= hi95 + 1e-9)
    assert model.predict(3, levels=()).mean.shape == (3,)


def test_mockup_is_deterministic() -> None:
    a = get_model_class("mockup")().fit(random_walk()).predict(5)
    b = get_model_class("mockup")().fit(seasonal_series()).predict(5)
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.mean, np.zeros(5))


def _best_model(models: str, series: pd.Series, test_values: int) -> str:
    config = make_config(
        model_parameters={"models": models, "test_values": test_values, "delta_training_percentage": 30}
    )
    results = [run_unit(config, series, spec, with_forecast=False) for spec in plan_units(config, series)]
    best = choose_best(config, results).best
    assert best is not None
    return best.spec.model


def test_seasonal_series_is_won_by_a_seasonal_model() -> None:
    winner = _best_model(
        "arima,persistence,seasonal_naive,autoets,exponentialsmoothing", seasonal_series(96), test_values=12
    )
    assert winner in {"seasonal_naive", "autoets", "exponentialsmoothing"}


def test_random_walk_is_won_by_naive_or_arima() -> None:
    assert _best_model("persistence,arima,seasonal_naive,mockup", random_walk(80), test_values=8) in {
        "persistence",
        "arima",
    }


def test_seasonal_period_comes_from_the_frequency() -> None:
    fitted = get_model_class("exponentialsmoothing")(season_length=12).fit(seasonal_series(96))
    assert fitted.params()["seasonal_periods"] == "12"
    short = get_model_class("autoets")(season_length=12).fit(seasonal_series(20))
    assert short.params()["season_length"] == "1"  # fewer than two seasons: non-seasonal


def test_arima_reports_its_order() -> None:
    assert get_model_class("arima")().fit(random_walk()).params()["order"].startswith("ARIMA(")


def test_prophet_captures_seasonality_and_gives_intervals() -> None:
    series = seasonal_series(72)
    config = make_config(model_parameters={"models": "fbprophet", "test_values": 12})
    result = run_unit(config, series, UnitSpec("fbprophet", "none", 60))
    naive = run_unit(config, series, UnitSpec("persistence", "none", 60))
    assert result.error is None and result.metrics["MAE"] < naive.metrics["MAE"]
    assert result.forecast is not None and result.forecast.lower_95 is not None
    assert all(
        lo <= y <= hi
        for lo, y, hi in zip(
            result.forecast.lower_95, result.forecast.yhat, result.forecast.upper_95, strict=True
        )
    )


def test_prophet_on_dates_before_the_nanosecond_range() -> None:
    index = pd.date_range("1500-01-01", periods=40, freq="YS", unit="us")
    series = pd.Series(np.linspace(10, 50, 40) + np.sin(np.arange(40)), index=index, name="old")
    config = make_config(model_parameters={"models": "fbprophet", "test_values": 5})
    result = run_unit(config, series, UnitSpec("fbprophet", "none", 35))
    assert result.error is None, result.error
    assert result.params["calendar_shift_years"] == "400"
    assert result.forecast is not None and result.forecast.timestamps[0].startswith("1540-01-01")
    assert 40 < result.forecast.yhat[0] < 70
