from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.data import MIN_TRAIN_POINTS, DataError, load_series

from .conftest import make_config, to_csv


def monthly_frame(n: int = 24) -> pd.DataFrame:
    dates = pd.date_range("2020-01-01", periods=n, freq="MS")
    return pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "a": np.arange(n, dtype=float),
            "b": np.arange(n, dtype=float) * 2 + 1,
        }
    )


def test_one_series_per_column_with_frequency_set() -> None:
    result = load_series(make_config(), to_csv(monthly_frame()))
    assert set(result.series) == {"a", "b"} and result.errors == {}
    assert result.frequency == "MS"
    for series in result.series.values():
        assert isinstance(series.index, pd.DatetimeIndex) and series.index.freqstr == "MS"
        assert len(series) == 24
    assert result.series["b"].iloc[3] == 7.0


def test_unsorted_rows_and_duplicate_timestamps_are_sorted_and_averaged() -> None:
    frame = monthly_frame(12)
    dup = frame.iloc[[4]].assign(a=100.0)
    shuffled = pd.concat([frame.iloc[::-1], dup])
    series = load_series(make_config(), to_csv(shuffled)).series["a"]
    assert series.index.is_monotonic_increasing
    assert series.iloc[4] == pytest.approx((4.0 + 100.0) / 2)


def test_gaps_are_interpolated_in_time_and_frequency_inferred_despite_them() -> None:
    dates = pd.date_range("2021-01-01", periods=40, freq="D")
    keep = [i for i in range(40) if i not in (10, 11, 12, 25)]
    frame = pd.DataFrame({"day": dates[keep].strftime("%Y-%m-%d"), "v": np.arange(40.0)[keep] * 3})
    result = load_series(make_config(), to_csv(frame))
    series = result.series["v"]
    assert result.frequency == "D" and len(series) == 40
    np.testing.assert_allclose(series.to_numpy(), np.arange(40.0) * 3)


def test_time_aware_interpolation_on_forced_frequency() -> None:
    # Forcing a daily grid on two points 3 days apart: the middle days sit on the straight line.
    frame = pd.DataFrame(
        {
            "d": ["2022-01-01", "2022-01-04"] + [f"2022-01-{d:02d}" for d in range(5, 20)],
            "v": [0.0, 3.0] + [float(d) for d in range(4, 19)],
        }
    )
    config = make_config(input_parameters={"frequency": "D"})
    series = load_series(config, to_csv(frame)).series["v"]
    assert series.loc["2022-01-02"] == pytest.approx(1.0) and series.loc["2022-01-03"] == pytest.approx(2.0)


def test_forced_frequency_aggregates_onto_the_grid() -> None:
    dates = pd.date_range("2020-01-01", periods=24 * 40, freq="h")
    frame = pd.DataFrame({"t": dates.strftime("%Y-%m-%d %H:%M"), "v": np.ones(len(dates))})
    result = load_series(make_config(input_parameters={"frequency": "D"}), to_csv(frame))
    assert result.frequency == "D" and len(result.series["v"]) == 40


def test_dateparser_options_are_used() -> None:
    dates = pd.date_range("2020-01-03", periods=20, freq="D")
    frame = pd.DataFrame({"d": dates.strftime("%d/%m/%Y"), "v": np.arange(20.0)})
    config = make_config(input_parameters={"dateparser_options": {"date_formats": ["%d/%m/%Y"]}})
    series = load_series(config, to_csv(frame)).series["v"]
    assert series.index[0] == pd.Timestamp("2020-01-03") and series.index[1] == pd.Timestamp("2020-01-04")


def test_selection_diff_and_renames() -> None:
    frame = monthly_frame(30)
    other = frame.assign(a=-1.0, b=-1.0)
    both = pd.concat([frame.assign(region="north"), other.assign(region="south")])
    config = make_config(
        input_parameters={"add_diff_column": "b", "timeseries_names": {"a": "Alpha", "b_diff": "B change"}},
        selection_parameters={
            "column_name_selection": "region",
            "value_selection": "north",
            "init_datetime": "2020-03-01",
            "end_datetime": "2022-02-01",
        },
    )
    result = load_series(config, to_csv(both))
    assert set(result.series) == {"Alpha", "b", "B change"}
    alpha = result.series["Alpha"]
    # init selection keeps 2020-03 onwards, then the diff step drops the first row.
    assert alpha.index[0] == pd.Timestamp("2020-04-01") and alpha.index[-1] == pd.Timestamp("2022-02-01")
    assert alpha.iloc[0] == 3.0
    assert (result.series["B change"] == 2.0).all()


def test_columns_to_load_and_named_date_column() -> None:
    frame = monthly_frame()[["a", "date", "b"]]
    config = make_config(input_parameters={"columns_to_load_from_url": "a,date", "index_column_name": "date"})
    assert set(load_series(config, to_csv(frame)).series) == {"a"}


def test_dates_before_the_nanosecond_range() -> None:
    years = [str(y) for y in range(1500, 1560)]
    frame = pd.DataFrame({"year": years, "v": np.arange(60.0)})
    result = load_series(make_config(), to_csv(frame))
    series = result.series["v"]
    assert series.index.unit == "us" and result.frequency.startswith("YS")
    assert series.index[0] == pd.Timestamp("1500-01-01") and len(series) == 60


def test_bad_series_are_reported_and_others_go_on() -> None:
    frame = monthly_frame(24)
    frame["text"] = ["x"] * 24
    frame["empty"] = [np.nan] * 24
    frame["late"] = [np.nan] * 20 + [1.0, 2.0, 3.0, 4.0]
    result = load_series(make_config(), to_csv(frame))
    assert set(result.series) == {"a", "b"}
    assert "non-numeric" in result.errors["text"] and "'x'" in result.errors["text"]
    assert "all empty" in result.errors["empty"]
    assert f"at least {MIN_TRAIN_POINTS} training points" in result.errors["late"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not a CSV"),
        (b"just one column\n1\n2\n", "date column and at least one value column"),
        (b"date,v\nnot a date,1\nsoon,2\nlater,3\n", "cannot parse"),
    ],
)
def test_request_level_errors(payload: bytes, expected: str) -> None:
    with pytest.raises(DataError, match=expected):
        load_series(make_config(), payload)


def test_missing_date_column_and_no_usable_series() -> None:
    with pytest.raises(DataError, match="no date column 'when'"):
        load_series(make_config(input_parameters={"index_column_name": "when"}), to_csv(monthly_frame()))
    frame = monthly_frame(24)[["date"]].assign(t="word")
    with pytest.raises(DataError, match="no usable series"):
        load_series(make_config(), to_csv(frame))
    with pytest.raises(DataError, match="too short|no usable series"):
        load_series(make_config(), to_csv(monthly_frame(8)))
