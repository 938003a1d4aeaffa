"""Holidays for prophet (`model_parameters.holidays`): a country code or a list of dates; plain config errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.config import ConfigError, parse_config
from forecasting.units import UnitSpec, run_unit
from tests.plugins.core_series import BASE, make_config

TEST = 20


def _holiday_series() -> pd.Series:
    """Daily noise around 10 with +30 on Christmas and New Year's Day (holidays in the US calendar)."""
    index = pd.date_range("2021-09-01", "2023-01-06", freq="D")
    rng = np.random.default_rng(5)
    values = 10 + rng.normal(0, 1, len(index))
    spikes = index.strftime("%m-%d").isin(["12-25", "01-01"])
    return pd.Series(values + 30 * spikes, index=index, name="visits")


def _mae(holidays: object) -> tuple[float, list[float]]:
    series = _holiday_series()
    mp = {"models": "fbprophet", "test_values": TEST, "delta_training_percentage": 100, "prediction_lags": 3}
    if holidays is not None:
        mp["holidays"] = holidays
    result = run_unit(make_config(model_parameters=mp), series, UnitSpec("fbprophet", "none", len(series) - TEST),
                      with_forecast=False)
    assert result.error is None, result.error
    return result.metrics["MAE"], result.test_forecast


def test_holidays_change_prophets_forecast_where_the_series_spikes() -> None:
    plain, plain_forecast = _mae(None)
    dates, dates_forecast = _mae(["2021-12-25", "2022-01-01", "2022-12-25", "2023-01-01"])
    country, _ = _mae("us")
    christmas = TEST - 13  # test points run 2022-12-18 .. 2023-01-06
    assert dates_forecast[christmas] > plain_forecast[christmas] + 15  # the spike is forecast
    assert dates < 0.6 * plain and country < 0.6 * plain


@pytest.mark.parametrize("value, words", [
    ("XX", "'XX' is not a country code the holidays package knows"),
    (["2023-12-25", "Christmas"], "'Christmas' is not a date"),
    ([], "a non-empty list of dates"),
    (7, "a country code"),
])
def test_holiday_config_errors(value: object, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "model_parameters": {**BASE["model_parameters"], "holidays": value}})
    assert "model_parameters.holidays" in str(err.value) and words in str(err.value)


def test_holidays_are_normalized_and_timex_holiday_country_is_read() -> None:
    mp = BASE["model_parameters"]
    assert make_config(model_parameters={"holidays": "it"}).model_parameters.holidays == "IT"
    dates = make_config(model_parameters={"holidays": ["2024-01-01", "2023-12-25", "2024-01-01"]})
    assert dates.model_parameters.holidays == ["2023-12-25", "2024-01-01"]
    timex = parse_config({**BASE, "model_parameters": {**mp, "fbprophet_parameters": {"holiday_country": "US"}}})
    assert timex.config.model_parameters.holidays == "US"
    assert any("only holiday_country is used" in w for w in timex.warnings)
