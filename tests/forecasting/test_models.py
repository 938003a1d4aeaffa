from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.models import MODELS, get_model_class
from forecasting.models.exponential_smoothing import candidate_periods
from forecasting.models.names import KNOWN_MODELS
from forecasting.models.statsforecast_models import kpss_differences
from forecasting.selection import choose_best
from forecasting.units import UnitSpec, plan_units, run_unit
from tests.plugins.core_series import make_config, random_walk, seasonal_series

FAST_MODELS = ["arima", "exponentialsmoothing", "persistence", "naive", "seasonal_naive", "theta", "autoets"]
ACCURACY_MODELS = ["dynamic_optimized_theta", "autotheta", "autoces", "mstl", "autoets_damped"]


def test_registry_matches_the_config_keywords() -> None:
    assert tuple(MODELS) == KNOWN_MODELS
    assert get_model_class("LSTM").name == "lstm"  # TIMEX's keyword, a model here too (tests/forecasting/test_lstm.py)
    with pytest.raises(ValueError, match="unknown model 'prophett'; known: fbprophet, arima"):
        get_model_class("prophett")


@pytest.mark.parametrize("name", FAST_MODELS + ACCURACY_MODELS + ["mockup"])
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


def test_autoets_season_comes_from_the_frequency() -> None:
    assert get_model_class("autoets")(season_length=12).fit(seasonal_series(96)).params()["season_length"] == "12"
    short = get_model_class("autoets")(season_length=12).fit(seasonal_series(20))
    assert short.params()["season_length"] == "1"  # fewer than two seasons: non-seasonal


@pytest.mark.parametrize("name", ACCURACY_MODELS)
def test_accuracy_models_are_deterministic_and_follow_the_season(name: str) -> None:
    series = seasonal_series(72)
    a = get_model_class(name)(season_length=12).fit(series).predict(12)
    b = get_model_class(name)(season_length=12).fit(series).predict(12)
    assert np.array_equal(a.mean, b.mean) and a.intervals is not None and b.intervals is not None
    assert np.array_equal(a.intervals[95][0], b.intervals[95][0])
    # A year of a seasonal series ahead: much closer to the true cycle than the last value repeated.
    t = np.arange(72, 84)
    truth = 100 + 20 * np.sin(2 * np.pi * t / 12) + 10 * np.cos(4 * np.pi * t / 12)
    assert np.mean(np.abs(a.mean - truth)) < 0.25 * np.mean(np.abs(series.iloc[-1] - truth))


def test_accuracy_models_work_in_a_unit_and_on_short_series() -> None:
    series = seasonal_series(22)  # under two seasons of 12: non-seasonal fits on windows of 9 and 16 points
    config = make_config(model_parameters={"models": ",".join(ACCURACY_MODELS), "test_values": 6,
                                           "delta_training_percentage": 40})
    for spec in plan_units(config, series):
        result = run_unit(config, series, spec)
        assert result.error is None, result.error
        assert result.forecast is not None and len(result.forecast.yhat) == 4
        assert result.forecast.lower_80 is not None and result.forecast.upper_95 is not None
    assert get_model_class("mstl")(season_length=12).fit(series).params() == {"season_lengths": "none"}
    with pytest.raises(ValueError, match="needs at least 7 training points"):
        get_model_class("mstl")(season_length=12).fit(series.iloc[:6])


def test_autoets_damped_always_damps_the_trend() -> None:
    rng = np.random.default_rng(7)
    trend = pd.Series(20 + 2.0 * np.arange(60) + rng.normal(0, 1, 60), index=seasonal_series(60).index)
    damped = get_model_class("autoets_damped")(season_length=1).fit(trend)
    assert ",Ad," in damped.params()["components"]  # e.g. ETS(A,Ad,N): whatever AICc prefers, a damped trend
    steps = np.diff(damped.predict(60, levels=()).mean)
    assert 0 < steps[-1] < steps[0]  # still rising, ever less: the damping
    # The same data without the restriction: autoets keeps the straight trend (a step of about 2 throughout).
    straight = np.diff(get_model_class("autoets")(season_length=1).fit(trend).predict(60, levels=()).mean)
    assert straight[-1] > steps[-1]
    with pytest.raises(ValueError, match="needs at least 8 training points"):
        get_model_class("autoets_damped")(season_length=1).fit(trend.iloc[:7])


def test_mstl_removes_every_seasonality_of_the_frequency() -> None:
    n = 24 * 7 * 3
    t = np.arange(n)
    values = 50 + 5 * np.sin(2 * np.pi * t / 24) + 3 * np.sin(2 * np.pi * t / 168)
    values += np.random.default_rng(4).normal(0, 0.2, n)
    hourly = pd.Series(values, index=pd.date_range("2024-01-01", periods=n, freq="h"))
    model = get_model_class("mstl")(season_length=24).fit(hourly)
    assert model.params() == {"season_lengths": "24,168"}
    ahead = np.arange(n, n + 48)
    truth = 50 + 5 * np.sin(2 * np.pi * ahead / 24) + 3 * np.sin(2 * np.pi * ahead / 168)
    assert np.mean(np.abs(model.predict(48).mean - truth)) < 0.6
    # Two weeks only: the weekly season is left out (it needs two full ones), the daily one stays.
    assert get_model_class("mstl")(season_length=24).fit(hourly.iloc[: 24 * 14 - 1]).params() == {
        "season_lengths": "24"
    }


def test_exponential_smoothing_takes_its_period_from_the_autocorrelation() -> None:
    # As TIMEX: a period-7 cycle in monthly data is found in the ACF, whatever the frequency says.
    assert candidate_periods(seasonal_series(96, period=7).to_numpy())[0] % 7 == 0
    fitted = get_model_class("exponentialsmoothing")(season_length=12).fit(seasonal_series(96, period=7))
    assert int(fitted.params()["seasonal_periods"]) % 7 == 0
    noise = pd.Series(np.random.default_rng(1).normal(0, 1, 80), index=seasonal_series(80).index)
    assert candidate_periods(noise.to_numpy()) == []
    plain = get_model_class("exponentialsmoothing")(season_length=12).fit(noise)
    assert plain.params() == {"trend": "none", "seasonal_periods": "none"}


def test_exponential_smoothing_intervals_are_reproducible() -> None:
    a = get_model_class("exponentialsmoothing")(season_length=12).fit(seasonal_series(60)).predict(6)
    b = get_model_class("exponentialsmoothing")(season_length=12).fit(seasonal_series(60)).predict(6)
    assert a.intervals is not None and b.intervals is not None
    assert np.array_equal(a.intervals[95][0], b.intervals[95][0])
    assert np.all(a.intervals[95][1] - a.intervals[95][0] > 0)


def test_exponential_smoothing_on_five_points_forecasts_without_intervals() -> None:
    five = pd.Series([1.0, 2.5, 2.0, 3.7, 4.1], index=pd.date_range("2000-01-01", periods=5, freq="MS"))
    pred = get_model_class("exponentialsmoothing")(season_length=12).fit(five).predict(3)
    assert np.all(np.isfinite(pred.mean)) and pred.intervals is None  # no residual variance to simulate


def test_arima_reports_its_order() -> None:
    assert get_model_class("arima")().fit(random_walk()).params()["order"].startswith("ARIMA(")


def test_arima_adds_seasonal_terms_only_to_seasonal_data() -> None:
    seasonal = get_model_class("arima")(season_length=12).fit(seasonal_series(96))
    assert seasonal.params()["order"].endswith("[12]")
    walk = random_walk(96)
    walk.index = seasonal_series(96).index  # monthly, so a season of 12 is on offer
    assert "[12]" not in get_model_class("arima")(season_length=12).fit(walk).params()["order"]


def test_arima_seasonal_false_searches_as_timex_on_a_seasonal_series() -> None:
    """model_parameters.arima_seasonal false reaches the model (units' model_options) and gives TIMEX 1.2.3's
    non-seasonal search; the default keeps the seasonal terms."""
    series = seasonal_series(60)
    default = make_config(model_parameters={"models": "arima", "test_values": 12})
    timex = make_config(model_parameters={"models": "arima", "test_values": 12, "arima_seasonal": False})
    seasonal = run_unit(default, series, UnitSpec("arima", "none", 48))
    plain = run_unit(timex, series, UnitSpec("arima", "none", 48))
    assert seasonal.error is None and seasonal.params["order"].endswith("[12]")
    assert plain.error is None and "[" not in plain.params["order"], plain.params
    assert plain.params["search"].startswith("TIMEX 1.2.3")
    assert plain.forecast is not None and plain.forecast.lower_95 is not None
    assert seasonal.metrics["MAE"] < plain.metrics["MAE"]  # why the seasonal search stays the default


# TIMEX 1.2.3's arima (pmdarima 1.8.5's auto_arima(seasonal=False), run in the reference venv) on
# bench/data/parity3.csv's sales up to 2021-10-01: the 28-point window before the last 12 starts without an
# intercept (d = 0, pmdarima's quirk) and adds it; the 124 last points (d = 1) start with one and drop it.
# Order, AIC and the next value.
PMDARIMA_SALES = [(28, 12, "ARIMA(1,0,2) with intercept", 222.888, 272.24799),
                  (124, 0, "ARIMA(1,1,0)", 956.979, 271.23892)]


@pytest.mark.parametrize(("size", "held_out", "order", "aic", "next_value"), PMDARIMA_SALES)
def test_timex_arima_search_finds_pmdarimas_model(size: int, held_out: int, order: str, aic: float,
                                                  next_value: float) -> None:
    from pathlib import Path

    frame = pd.read_csv(Path(__file__).parents[2] / "bench" / "data" / "parity3.csv", index_col="month",
                        parse_dates=True)
    sales = frame.loc[:"2021-10-01", "sales"]
    window = sales.iloc[len(sales) - held_out - size:len(sales) - held_out].asfreq("MS")
    model = get_model_class("arima")(season_length=12, options={"seasonal": False}).fit(window)
    assert model.params()["order"] == order
    assert float(model.params()["aic"]) == pytest.approx(aic, abs=1e-3)
    assert model.predict(1, levels=()).mean[0] == pytest.approx(next_value, rel=1e-5)


def test_kpss_differences_counts_unit_roots() -> None:
    noise = np.random.default_rng(2).normal(0, 1, 120)
    assert kpss_differences(noise) == 0
    assert kpss_differences(np.cumsum(noise)) == 1
    assert kpss_differences(np.cumsum(np.cumsum(noise))) == 2
    assert kpss_differences(np.ones(30)) == 0


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


def test_season_lengths_list_every_cycle_of_the_frequency() -> None:
    from forecasting.seasonality import season_length, season_lengths

    assert season_lengths("MS") == (12,) and season_lengths("QS") == (4,) and season_lengths("YS") == ()
    assert season_lengths("h") == (24, 168) and season_lengths("2h") == (12, 84)
    assert season_lengths("D") == (7, 365) and season_lengths("30min") == (48, 336)
    assert season_lengths("2D") == () and season_lengths(None) == ()
    for freq in ("MS", "W-SUN", "D", "h", "15min", "s", "B"):
        assert season_lengths(freq)[0] == season_length(freq)
