from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from forecasting.units import (
    CHEAP_POINTS,
    Forecast,
    UnitResult,
    UnitSpec,
    batches,
    plan_units,
    run_unit,
    training_windows,
    unit_cost,
)
from tests.plugins.core_series import make_config, seasonal_series


def test_windows_follow_timex() -> None:
    # TIMEX: 100 points, 10 test values, delta 20 % -> training sets of 20, 40, 60, 80 and all 90.
    assert training_windows(100, 10, 20) == [20, 40, 60, 80, 90]
    assert training_windows(30, 5, 30) == [9, 18, 25]


def test_plan_is_deterministic_and_complete() -> None:
    config = make_config(
        model_parameters={"models": "naive,mockup", "possible_transformations": "none,log_modified"}
    )
    series = seasonal_series(48)
    plan = plan_units(config, series)
    assert plan == plan_units(config, series)
    assert len(plan) == len(set(plan)) == 2 * 2 * len(training_windows(48, 6, 25))
    assert plan[0] == UnitSpec("naive", "none", 12)


def test_metrics_and_forecast_of_a_known_model() -> None:
    series = seasonal_series(48)
    config = make_config()
    result = run_unit(config, series, UnitSpec("mockup", "none", 24))
    assert result.error is None
    actual = series.to_numpy()[-6:]
    assert result.test_forecast == [0.0] * 6
    assert result.metrics["MAE"] == pytest.approx(np.mean(np.abs(actual)))
    assert result.metrics["MSE"] == pytest.approx(np.mean(actual**2))
    assert result.metrics["RMSE"] == pytest.approx(math.sqrt(np.mean(actual**2)))
    assert result.metrics["AM"] == pytest.approx(np.mean(actual))
    assert result.metrics["SD"] == pytest.approx(np.std(actual))
    assert result.metrics["MAPE"] == pytest.approx(100.0) and result.metrics["sMAPE"] == pytest.approx(200.0)
    forecast = result.forecast
    assert forecast is not None and len(forecast.yhat) == 4
    expected = pd.date_range(series.index[-1], periods=5, freq="MS")[1:]
    assert [pd.Timestamp(t) for t in forecast.timestamps] == list(expected)
    assert forecast.lower_95 == [-1.0] * 4 and forecast.upper_80 == [0.5] * 4


def test_final_refit_uses_window_plus_test_points() -> None:
    series = seasonal_series(48)
    result = run_unit(make_config(), series, UnitSpec("persistence", "none", 12))
    assert result.forecast is not None
    assert result.forecast.yhat == [pytest.approx(series.iloc[-1])] * 4  # last value incl. test points
    assert result.test_forecast == [pytest.approx(series.iloc[-7])] * 6
    assert result.params["train_start"].startswith(str(series.index[-18].date()))


def test_min_max_and_rounding_are_applied() -> None:
    config = make_config(
        model_parameters={
            "min_values": {"_all": 1.5},
            "max_values": {"seasonal": 100},
            "round_to_integer": "seasonal",
        }
    )
    result = run_unit(config, seasonal_series(48), UnitSpec("mockup", "none", 12))
    assert result.test_forecast == [2.0] * 6  # 0 clipped to 1.5, then rounded
    assert result.forecast is not None and result.forecast.upper_95 == [2.0] * 4


def test_failures_are_reported_not_raised() -> None:
    negative = seasonal_series(48) - 500
    result = run_unit(make_config(), negative, UnitSpec("naive", "log", 12))
    assert result.error is not None and "log_modified" in result.error and result.forecast is None
    too_big = run_unit(make_config(), negative, UnitSpec("naive", "none", 500))
    assert too_big.error is not None and "window 500" in too_big.error
    unknown = run_unit(make_config(), negative, UnitSpec("prophett", "none", 12))
    assert unknown.error is not None and "unknown model 'prophett'" in unknown.error


def test_specs_and_forecasts_as_dicts_hold_every_field_and_lists_of_their_own() -> None:
    spec = UnitSpec("naive", "log_modified", 24, ("temp",), 30)
    assert UnitSpec.from_dict(spec.to_dict()) == spec
    assert set(spec.to_dict()) == {f.name for f in dataclasses.fields(UnitSpec)}
    forecast = Forecast(["2020-01-01"], [1.0], upper_95=[2.0])
    as_dict = forecast.to_dict()
    assert as_dict == dataclasses.asdict(forecast) and Forecast.from_dict(as_dict) == forecast
    as_dict["yhat"].append(3.0)  # a copy: the record built from it does not change the forecast
    assert forecast.yhat == [1.0]


def test_results_cross_process_boundaries_as_json() -> None:
    result = run_unit(make_config(), seasonal_series(48), UnitSpec("naive", "log_modified", 24))
    result.metrics["MAPE"] = math.nan
    text = json.dumps(result.to_dict(), allow_nan=True)
    back = UnitResult.from_dict(json.loads(text))
    assert back.spec == result.spec and back.forecast == result.forecast
    assert back.test_forecast == result.test_forecast and back.params == result.params
    assert math.isnan(back.metrics["MAPE"]) and back.metrics["MAE"] == result.metrics["MAE"]


def test_batches_put_costly_units_alone_costliest_first_and_cheap_ones_together_last() -> None:
    config = make_config(model_parameters={
        "models": "persistence,exponentialsmoothing,fbprophet,arima,naive",
        "possible_transformations": "none,log_modified"})
    plan = plan_units(config, seasonal_series(60))
    records = batches(plan, 60)
    assert sorted(i for r in records for i in r) == list(range(len(plan)))  # every unit once, by plan index
    cheap = [i for i, u in enumerate(plan) if u.model in ("persistence", "naive")]
    costly = [r for r in records if plan[r[0]].model not in ("persistence", "naive")]
    assert records[len(costly):] == [cheap]  # persistence is naive: batched with it, in plan order, last
    assert all(len(r) == 1 for r in costly) and len(costly) == len(plan) - len(cheap)
    costs = [unit_cost(plan[r[0]]) for r in costly]
    assert costs == sorted(costs, reverse=True)
    assert plan[costly[0][0]] == UnitSpec("arima", "none", max(u.window for u in plan))
    # Past CHEAP_POINTS every unit travels alone, the costliest still first.
    alone = batches(plan, CHEAP_POINTS + 1)
    assert all(len(r) == 1 for r in alone) and sorted(r[0] for r in alone[-len(cheap):]) == cheap
    assert alone[0] == costly[0]
