"""Request limits: each one at its boundary and just past it, the environment variables, the wording."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from forecasting.config import FieldError, TimexConfig
from forecasting.limits import ENV_VARS, RequestLimits, check_config, check_data, describe, result_bytes
from forecasting.units import plan_units
from tests.plugins.core_series import make_config

BIG = RequestLimits(max_prediction_lags=10**9, max_horizon_ratio=10**9, max_test_values=10**9, max_series=10**9,
                    max_points_per_series=10**9, max_units_per_request=10**9, max_record_bytes=10**12)


def only(**limits: float) -> RequestLimits:
    """Every limit out of the way but the ones under test."""
    return dataclasses.replace(BIG, **limits)


def frame(n_series: int, n_points: int) -> dict[str, pd.Series]:
    index = pd.date_range("2000-01-01", periods=n_points, freq="D")
    rng = np.random.default_rng(0)
    return {f"s{i}": pd.Series(rng.normal(10, 1, n_points), index=index, name=f"s{i}") for i in range(n_series)}


def fields_of(errors: list[FieldError]) -> list[str]:
    return [e.field for e in errors]


# --- from the environment -------------------------------------------------------------------------------------

def test_defaults_and_every_variable_from_the_environment() -> None:
    assert RequestLimits.from_env({}) == RequestLimits()
    d = RequestLimits()
    assert (d.max_prediction_lags, d.max_horizon_ratio, d.max_test_values, d.max_series, d.max_points_per_series,
            d.max_units_per_request, d.max_record_bytes) == (10_000, 10.0, 10_000, 5_000, 1_000_000, 50_000, 1_000_000)
    env = {var: str(i + 2) for i, var in enumerate(ENV_VARS.values())}
    env["TIMEX_MAX_HORIZON_RATIO"] = "2.5"
    limits = RequestLimits.from_env(env)
    for i, (name, var) in enumerate(ENV_VARS.items()):
        assert getattr(limits, name) == (2.5 if var == "TIMEX_MAX_HORIZON_RATIO" else i + 2), var
    assert isinstance(limits.max_series, int) and set(ENV_VARS) == {f.name for f in dataclasses.fields(RequestLimits)}
    assert RequestLimits.from_env({"TIMEX_MAX_SERIES": "  "}) == RequestLimits()  # blank: the default


@pytest.mark.parametrize(("var", "raw"), [("TIMEX_MAX_SERIES", "many"), ("TIMEX_MAX_SERIES", "0"),
                                          ("TIMEX_MAX_PREDICTION_LAGS", "-5"), ("TIMEX_MAX_UNITS_PER_REQUEST", "1.5"),
                                          ("TIMEX_MAX_HORIZON_RATIO", "nan"), ("TIMEX_MAX_HORIZON_RATIO", "inf")])
def test_a_bad_variable_is_named(var: str, raw: str) -> None:
    with pytest.raises(ValueError, match=f"^{var}='{raw}': expected a positive"):
        RequestLimits.from_env({var: raw})


def test_settings_carry_the_limits() -> None:
    from timex_stream.runtime.settings import Settings

    assert Settings.from_env({"TIMEX_MAX_SERIES": "7"}).limits.max_series == 7
    assert Settings().limits == RequestLimits()


# --- the config, before any download ----------------------------------------------------------------------------

def test_the_hostile_config_is_refused_in_plain_words() -> None:
    errors = check_config(make_config(model_parameters={"prediction_lags": 1_000_000_000}), RequestLimits())
    assert [str(e) for e in errors] == [
        "model_parameters.prediction_lags: 1000000000 is over the limit of 10000 (TIMEX_MAX_PREDICTION_LAGS)"]


@pytest.mark.parametrize(("key", "name"), [("prediction_lags", "max_prediction_lags"),
                                           ("test_values", "max_test_values")])
def test_config_limits_at_and_just_past_the_boundary(key: str, name: str) -> None:
    limits = only(**{name: 50})
    assert check_config(make_config(model_parameters={key: 50}), limits) == []
    errors = check_config(make_config(model_parameters={key: 51}), limits)
    assert errors == [FieldError(f"model_parameters.{key}", f"51 is over the limit of 50 ({ENV_VARS[name]})")]


def test_the_final_forecasts_alone_must_fit_in_a_record() -> None:
    config = make_config(model_parameters={"models": "naive,theta", "prediction_lags": 1000})
    least = result_bytes(0, 2, 1000, 0, len(config.to_json().encode()))
    assert check_config(config, only(max_record_bytes=least)) == []
    (error,) = check_config(config, only(max_record_bytes=least - 1))
    assert error.field == "model_parameters.prediction_lags"
    assert f"2 model(s) × 1000 prediction_lags would need a record of up to {least} bytes, over the limit of " \
           f"{least - 1} bytes per record (TIMEX_MAX_RECORD_BYTES)" in error.message


# --- the data, before any unit is planned ----------------------------------------------------------------------

def test_series_count_at_and_past_the_limit() -> None:
    config = make_config()
    assert check_data(config, frame(3, 40), only(max_series=3)) == []
    (error,) = check_data(config, frame(4, 40), only(max_series=3))
    assert str(error).startswith(
        "data: the data have 4 series, over the limit of 3 series per request (TIMEX_MAX_SERIES)")


def test_points_per_series_at_and_past_the_limit_naming_the_longest() -> None:
    config = make_config()
    series = frame(1, 100) | {"long": frame(1, 101)["s0"], "longer": frame(1, 105)["s0"]}
    assert check_data(config, frame(5, 100), only(max_points_per_series=100)) == []
    (error,) = check_data(config, series, only(max_points_per_series=100))
    assert error.field == "data"
    assert error.message.startswith("series 'longer' has 105 points, over the limit of 100 points per series "
                                    "(TIMEX_MAX_POINTS_PER_SERIES) (and 1 more: 'long');")


def test_horizon_ratio_against_the_shortest_series() -> None:
    series = frame(1, 60) | {"short": frame(1, 40)["s0"]}
    limits = only(max_horizon_ratio=2.5)
    assert check_data(make_config(model_parameters={"prediction_lags": 100}), series, limits) == []
    (error,) = check_data(make_config(model_parameters={"prediction_lags": 101}), series, limits)
    assert str(error) == ("model_parameters.prediction_lags: 101 is over the limit of 100 for series 'short', "
                          "2.5 × its 40 points (TIMEX_MAX_HORIZON_RATIO)")


@pytest.mark.parametrize("delta", [25, 2])  # a small delta_training_percentage multiplies the windows
def test_units_per_request_counted_as_the_planner_plans(delta: float) -> None:
    config = make_config(model_parameters={"models": "naive,mockup", "possible_transformations": "none,log",
                                           "delta_training_percentage": delta})
    series = frame(3, 80) | {"too short to plan": frame(1, 8)["s0"]}
    planned = sum(len(plan_units(config, s)) for name, s in series.items() if name != "too short to plan")
    assert planned > 3 * 2 * 2
    assert check_data(config, series, only(max_units_per_request=planned)) == []
    (error,) = check_data(config, series, only(max_units_per_request=planned - 1))
    assert str(error).startswith(f"model_parameters: the request needs {planned} units of work, over the limit of "
                                 f"{planned - 1} units of work per request (TIMEX_MAX_UNITS_PER_REQUEST)")


def _record_size(config: TimexConfig, series: pd.Series) -> int:
    return result_bytes(len(series), len(config.model_names), config.model_parameters.prediction_lags,
                        len(plan_units(config, series)), len(config.to_json().encode()))


@pytest.mark.parametrize(("model_parameters", "n_points", "blamed"), [
    ({"prediction_lags": 500, "models": "naive,theta,mockup"}, 100, "model_parameters.prediction_lags"),
    ({"prediction_lags": 4}, 5000, "data"),
    ({"prediction_lags": 4, "delta_training_percentage": 1, "possible_transformations": "none,log"}, 400,
     "model_parameters"),
])
def test_record_size_at_and_past_the_limit_blames_what_weighs_most(model_parameters: dict, n_points: int,
                                                                   blamed: str) -> None:
    config = make_config(model_parameters=model_parameters)
    series = frame(2, n_points)
    size = _record_size(config, series["s0"])
    assert check_data(config, series, only(max_record_bytes=size)) == []
    (error,) = check_data(config, series, only(max_record_bytes=size - 1))
    assert error.field == blamed
    assert f"would need a record of up to {size} bytes, over the limit of {size - 1} bytes per record " \
           "(TIMEX_MAX_RECORD_BYTES)" in error.message and "(and 1 more: 's1')" in error.message


def test_many_offenders_make_a_short_message() -> None:
    (error,) = check_data(make_config(), frame(50, 30), only(max_points_per_series=20))
    assert "(and 49 more: 's1', 's2', 's3', ...)" in error.message and len(error.message) < 300


def test_a_request_past_several_limits_hears_of_each() -> None:
    config = make_config(model_parameters={"prediction_lags": 400})
    errors = check_data(config, frame(3, 30), only(max_series=2, max_horizon_ratio=10))
    assert fields_of(errors) == ["data", "model_parameters.prediction_lags"]
    assert describe(errors) == ("the request is over its limits:\n- " + str(errors[0]) + "\n- " + str(errors[1]))
    assert describe(errors[:1]) == str(errors[0])


def test_the_defaults_take_an_ordinary_request() -> None:
    config = make_config(model_parameters={"models": "naive,seasonal_naive,theta,autoets,arima",
                                           "possible_transformations": "none,log", "prediction_lags": 365})
    assert check_config(config, RequestLimits()) == []
    assert check_data(config, frame(20, 3650), RequestLimits()) == []  # ten years of days
