from __future__ import annotations

import gzip
import time

import numpy as np
import pandas as pd
import pytest

from forecasting.data import MIN_TRAIN_POINTS, DataError, load_series
from tests.plugins.core_series import make_config, to_csv


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


def test_empty_values_at_either_end_are_trimmed_and_the_frequency_kept() -> None:
    frame = monthly_frame(24)
    frame["a"] = [np.nan, np.nan] + list(range(2, 23)) + [np.nan]
    result = load_series(make_config(), to_csv(frame))
    a, b = result.series["a"], result.series["b"]
    assert list(a) == list(range(2, 23)) and a.index.freqstr == "MS"
    assert (a.index[0], a.index[-1]) == (b.index[2], b.index[-2]) and len(b) == 24


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


# Hostile CSV content: each ends in a correct series set or a DataError that names the problem.

DATES = [d.strftime("%Y-%m-%d") for d in pd.date_range("2020-01-01", periods=24, freq="MS")]


def lines(header: str, rows: list[str], end: str = "\n") -> bytes:
    return end.join([header, *rows, ""]).encode()


def good_rows(sep: str = ",") -> list[str]:
    return [f"{d}{sep}{i}" for i, d in enumerate(DATES)]


HOSTILE_CSV = [
    ("no date column", lines("when,a", good_rows()), {"index_column_name": "date"},
     "input_parameters.index_column_name: no date column 'date' in the CSV; it has ['when', 'a']"),
    ("unparseable dates", lines("date,a", [f"2020-13-{40 + i},{i}" for i in range(24)]), {},
     "column 'date': cannot parse '2020-13-40' (data row 1) as a date"),
    ("words as dates", lines("date,a", [f"soon,{i}" for i in range(24)]), {},
     "column 'date': cannot parse 'soon' (data row 1) as a date"),
    ("all-NaN values", lines("date,a", [f"{d},NaN" for d in DATES]), {},
     "no usable series: column 'a': no values (all empty/NaN)"),
    ("one row", lines("date,a", ["2020-01-01,1"]), {},
     "only 1 distinct timestamps: too few to infer a frequency"),
    ("one row, frequency given", lines("date,a", ["2020-01-01,1"]), {"frequency": "MS"},
     "no usable series: column 'a': only 1 points; needs test_values (6) + at least 5 training points"),
    ("header only", b"date,a\n", {}, "the CSV has a header (['date', 'a']) but no data rows"),
    ("only blank dates", lines("date,a", [f",{i}" for i in range(24)]), {}, "column 'date' has no dates"),
    ("100,000 columns", lines("date," + ",".join(f"c{i}" for i in range(100_000)),
                              [DATES[0] + ",1" * 100_000]), {},
     "the CSV has 100,001 columns; at most 5,001 are supported"),
    ("duplicate column names", lines("date,a,a", [f"{d},1,2" for d in DATES]), {},
     "the CSV has more than one column named 'a'; column names must be unique"),
    ("latin-1 text", lines("date,caf\xe9", good_rows()).replace(b"\xc3\xa9", b"\xe9"), {},
     "the data are not UTF-8 text (byte 0xe9 at position 8): save the CSV as UTF-8"),
    ("UTF-16 text", "date,a\n2020-01-01,1\n".encode("utf-16"), {}, "the data are UTF-16 text; save the CSV as UTF-8"),
    ("HTML page", b"\n  <!DOCTYPE html><html><body>Sign in</body></html>", {},
     "the data are a web page (HTML/XML: a login or error page?), not a CSV"),
    ("gzip file", gzip.compress(lines("date,a", good_rows())), {},
     "the data are a gzip-compressed file, not a CSV"),
    ("zip file", b"PK\x03\x04" + b"\x14" * 40, {}, "the data are a zip-compressed file, not a CSV"),
    ("NUL bytes", b"date,a\n2020-01-01,\x00\x01\x02\n", {}, "not a CSV text file (binary content)"),
    ("whitespace only", b" \r\n\t\n", {}, "the data are empty"),
    ("row with too many fields", lines("date,a", [*good_rows()[:3], "2020-04-01,1,2"]), {},
     "the data are not a readable CSV: line 5 has 3 fields but the header has 2"),
    ("unclosed quote", lines('date,"a', good_rows()), {},
     'the data are not a readable CSV: a quote (") is opened and never closed'),
    ("years after 9999", lines("date,a", [f"{9999 + i}-01-01,{i}" for i in range(24)]), {},
     "column 'date': dates must lie between the years 1 and 9999; found 10000-01-01"),
    ("only text values", lines("date,t", [f"{d},word" for d in DATES]), {},
     "no usable series: column 't': non-numeric values, e.g. 'word' at data row 1 (24 of 24 rows)"),
]


@pytest.mark.parametrize(("payload", "inputs", "message"), [c[1:] for c in HOSTILE_CSV],
                         ids=[c[0] for c in HOSTILE_CSV])
def test_hostile_csv_is_a_plain_data_error(payload: bytes, inputs: dict, message: str) -> None:
    with pytest.raises(DataError) as caught:
        load_series(make_config(input_parameters=inputs), payload)
    assert message in str(caught.value)


def test_mixed_and_infinite_values_fail_only_their_column_and_name_the_row() -> None:
    rows = [f"{d},{i},{'x' if i == 5 else i},{'inf' if i == 3 else i}" for i, d in enumerate(DATES)]
    result = load_series(make_config(), lines("date,a,mixed,inf", rows))
    assert list(result.series) == ["a"]
    assert result.errors == {"mixed": "non-numeric values, e.g. 'x' at data row 6 (1 of 24 rows)",
                             "inf": "infinite value 'inf' at data row 4"}


ODD_NAMES = ["\U0001f600 rocket", "\u05e2\u05d1\u05e8\u05d9\u05ea \u200f", "e\u0301te\u0301",
             "a/b\\c", "two  inner spaces", "L" * 1000, "\u0645\u0628\u064a\u0639\u0627\u062a"]


def test_odd_unicode_column_names_load_and_are_kept_exactly() -> None:
    header = ",".join(["date", *[f'"{n}"' for n in ODD_NAMES]])
    rows = [",".join([d, *[str(i + k) for k in range(len(ODD_NAMES))]]) for i, d in enumerate(DATES)]
    result = load_series(make_config(), lines(header, rows))
    assert list(result.series) == ODD_NAMES and result.errors == {}
    assert result.series[ODD_NAMES[2]].iloc[4] == 6.0


@pytest.mark.parametrize(("name", "payload"), [
    ("semicolon", lines("date;a", good_rows(";"))),
    ("tab", lines("date\ta", good_rows("\t"))),
    ("pipe", lines("date|a", good_rows("|"))),
    ("BOM", b"\xef\xbb\xbf" + lines("date,a", good_rows())),
    ("CRLF", lines("date,a", good_rows(), end="\r\n")),
    ("BOM, semicolon and CRLF", b"\xef\xbb\xbf" + lines("date;a", good_rows(";"), end="\r\n")),
])
def test_other_delimiters_bom_and_crlf_load_the_same_series(name: str, payload: bytes) -> None:
    result = load_series(make_config(), payload)
    assert list(result.series) == ["a"], name
    np.testing.assert_array_equal(result.series["a"].to_numpy(), np.arange(24.0))
    assert result.series["a"].index[0] == pd.Timestamp("2020-01-01") and result.frequency == "MS"


def test_duplicate_dates_are_averaged_in_a_hostile_file_too() -> None:
    rows = [*good_rows(), f"{DATES[3]},103", f"{DATES[3]},203"]
    series = load_series(make_config(), lines("date,a", rows)).series["a"]
    assert len(series) == 24 and series.loc[DATES[3]] == pytest.approx((3 + 103 + 203) / 3)


def test_too_many_dates_for_dateparser_is_refused_before_parsing_any() -> None:
    dates = [d.strftime("%Y-%m-%d") for d in pd.date_range("1990-01-01", periods=6000, freq="D")]
    rows = [f"{d},1" for d in dates] + ["5 zz 2020,1"]  # one odd value: pandas gives up, dateparser would be next
    started = time.monotonic()
    with pytest.raises(DataError, match="column 'date': 6,001 distinct dates are in a format only dateparser reads"):
        load_series(make_config(), lines("date,a", rows))
    assert time.monotonic() - started < 10  # not the ~50 s dateparser would take
