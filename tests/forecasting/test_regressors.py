"""Additional regressors in the core (forecasting.regressors): TIMEX's CSV format, alignment onto a series and
its horizon, the checks that fail in plain words, the config keys, and the plan of units that use them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.config import ConfigError, parse_config
from forecasting.regressors import MAX_PER_SERIES, RegressorError, align, load, parse
from forecasting.units import UnitSpec, plan_units
from tests.plugins.core_series import BASE, make_config, seasonal_series


def _csv(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def _regressor_csv(start: str, n: int, columns: dict[str, np.ndarray], freq: str = "MS") -> bytes:
    frame = pd.DataFrame({"date": pd.date_range(start, periods=n, freq=freq).strftime("%Y-%m-%d"), **columns})
    return frame.to_csv(index=False).encode()


def test_parse_reads_timex_format_and_keeps_the_last_row_of_a_date() -> None:
    config = make_config(input_parameters={"index_column_name": "when"})
    got = parse(_csv(["when,temp,rain", "2020-02-01,2,5", "2020-01-01,1,4", "2020-02-01,3,6", "2020-03-01,4,",
                      "2020-04-01,5,7"]), config, "http://x/r.csv")
    assert list(got) == ["temp", "rain"]
    assert got["temp"].tolist() == [1.0, 3.0, 4.0, 5.0]  # sorted by date, 2020-02-01's last row kept
    assert got["rain"].tolist() == [4.0, 6.0, 7.0]  # an empty cell is no value
    # No index_column_name in the CSV: its first column holds the dates, as TIMEX reads it.
    first = parse(_csv(["d,x", "2020-01-01,1", "2020-01-02,2", "2020-01-03,3"]), make_config(), "u")
    assert first["x"].index[0] == pd.Timestamp("2020-01-01")


@pytest.mark.parametrize("rows, words", [
    (["date,temp", "2020-01-01,1", "2020-02-01,warm", "2020-03-01,3"],
     "column 'temp': non-numeric values, e.g. 'warm'"),
    (["date,temp", "not a date,1"], "cannot parse 'not a date'"),
    (["date"], "a date column and at least one regressor column"),
    (["date,temp", "2020-01-01,1", "2020-02-01,2"], "column 'temp' has 2 value(s)"),
    (["<html><body>login</body></html>"], "web page"),
])
def test_unreadable_regressor_csvs_are_refused_naming_the_url(rows: list[str], words: str) -> None:
    with pytest.raises(RegressorError) as err:
        parse(_csv(rows), make_config(), "http://127.0.0.1/r.csv")
    assert "http://127.0.0.1/r.csv" in str(err.value) and words in str(err.value)


def test_align_interpolates_onto_the_series_and_its_horizon() -> None:
    index = pd.date_range("2020-01-01", periods=4, freq="D")
    weekly = pd.Series([0.0, 7.0, 14.0], index=pd.date_range("2019-12-30", periods=3, freq="7D"), name="w")
    frame = align({"w": weekly}, index, horizon=2)
    assert list(frame.index) == list(pd.date_range("2020-01-01", periods=6, freq="D"))
    assert frame["w"].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_align_refuses_a_regressor_that_stops_before_the_horizon_ends() -> None:
    index = pd.date_range("2020-01-01", periods=10, freq="MS")
    short = pd.Series(np.arange(11.0), index=pd.date_range("2020-01-01", periods=11, freq="MS"), name="temp")
    with pytest.raises(RegressorError) as err:
        align({"temp": short}, index, horizon=3, where={"temp": "http://h/t.csv"})
    message = str(err.value)
    assert "'temp' (from http://h/t.csv) has no values for 2 of the 13 dates" in message
    assert "from 2020-12-01 00:00:00 to 2021-01-01 00:00:00" in message and "3 forecast steps" in message


def _fetcher(files: dict[str, bytes]):  # type: ignore[no-untyped-def]
    def fetch(url: str) -> bytes:
        if url not in files:
            raise ValueError(f"downloading {url} failed: the server answered HTTP 404 Not Found")
        return files[url]
    return fetch


def test_load_gives_each_series_all_and_its_own_columns_stored_once() -> None:
    n = 48 + 4
    shared = _regressor_csv("2010-01-01", n, {"temp": np.arange(n, dtype=float)})
    own = _regressor_csv("2010-01-01", n, {"promo": np.ones(n)})
    config = make_config(additional_regressors={"_all": "http://h/all.csv", "a": "http://h/a.csv"})
    series = {"a": seasonal_series(48).rename("a"), "b": seasonal_series(48, seed=1).rename("b")}
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return {"http://h/all.csv": shared, "http://h/a.csv": own}[url]

    got = load(config, series, fetch)
    assert fetched == ["http://h/all.csv", "http://h/a.csv"]  # each URL once
    assert got.errors == {} and got.notes == []
    names = {s: [str(got.columns[k].name) for k in keys] for s, keys in got.per_series.items()}
    assert names == {"a": ["temp", "promo"], "b": ["temp"]}
    assert got.per_series["a"][0] == got.per_series["b"][0] and len(got.columns) == 2  # 'temp' once


def test_load_fails_what_cannot_be_used_in_plain_words() -> None:
    n = 48
    short = _regressor_csv("2010-01-01", n, {"temp": np.arange(n, dtype=float)})  # no horizon
    good = _regressor_csv("2010-01-01", n + 4, {"temp": np.arange(n + 4, dtype=float)})
    series = {"a": seasonal_series(48).rename("a"), "b": seasonal_series(48, seed=1).rename("b")}
    files = {"http://h/short.csv": short, "http://h/good.csv": good}
    config = make_config(additional_regressors={"a": "http://h/short.csv", "b": "http://h/missing.csv",
                                                "zzz": "http://h/good.csv"})
    got = load(config, series, _fetcher(files))
    assert "no values for 4 of the 52 dates" in got.errors["a"] and "4 forecast steps" in got.errors["a"]
    assert "HTTP 404" in got.errors["b"]
    assert len(got.notes) == 1 and "'zzz', which is not a series being forecast" in got.notes[0]
    # `_all` concerns every series: the request cannot go on without it.
    with pytest.raises(RegressorError, match="HTTP 404"):
        load(make_config(additional_regressors={"_all": "http://h/missing.csv"}), series, _fetcher(files))
    clash = make_config(additional_regressors={"_all": "http://h/good.csv", "a": "http://h/good2.csv"})
    got = load(clash, series, _fetcher({**files, "http://h/good2.csv": good}))
    assert "two additional regressors of series 'a' are named 'temp'" in got.errors["a"] and "b" not in got.errors


@pytest.mark.parametrize("value, words", [
    ({"_all": "  "}, "additional_regressors._all: the CSV URL is empty"),
    ({}, "at least one"),
    ("http://h/r.csv", "additional_regressors: Input should be a valid dictionary"),
])
def test_config_errors_for_additional_regressors(value: object, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "additional_regressors": value})
    assert words in str(err.value)


def test_additional_regressors_are_no_longer_reported_as_ignored() -> None:
    parsed = parse_config({**BASE, "additional_regressors": {"_all": "http://h/r.csv"}})
    assert parsed.warnings == [] and parsed.config.additional_regressors == {"_all": "http://h/r.csv"}
    assert parse_config(parsed.config.to_json()).config == parsed.config


def test_models_that_take_regressors_get_units_with_and_without_them() -> None:
    config = make_config(model_parameters={"models": "naive,mockup", "possible_transformations": "none,log"})
    series = seasonal_series(48)
    plain = plan_units(config, series)
    plan = plan_units(config, series, ["temp", "promo"])
    with_regressors = [u for u in plan if u.regressors]
    assert [u for u in plan if not u.regressors] == plain  # the univariate plan is unchanged
    assert {u.model for u in with_regressors} == {"mockup"}  # naive takes none
    assert len(with_regressors) == len([u for u in plain if u.model == "mockup"])
    assert all(u.regressors == ("temp", "promo") for u in with_regressors)
    assert UnitSpec.from_dict(with_regressors[0].to_dict()) == with_regressors[0]


def test_limits_count_the_units_with_regressors_and_the_weight_of_their_names() -> None:
    from forecasting.limits import RequestLimits, check_data

    config = make_config(model_parameters={"models": "naive,mockup"})
    series = {"s": seasonal_series(48).rename("s")}
    plain = len(plan_units(config, series["s"]))
    with_regressors = len(plan_units(config, series["s"], ["temp"]))
    assert check_data(config, series, RequestLimits(max_units_per_request=with_regressors)) == []
    over = check_data(config, series, RequestLimits(max_units_per_request=plain), {"s": ["temp"]})
    assert len(over) == 1 and f"{with_regressors} units of work" in over[0].message
    long_names = {"s": [f"regressor {i} " + "x" * 1000 for i in range(MAX_PER_SERIES)]}
    heavy = check_data(config, series, RequestLimits(), long_names)
    assert len(heavy) == 1 and heavy[0].field == "additional_regressors", heavy
