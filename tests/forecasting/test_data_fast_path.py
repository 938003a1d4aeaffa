"""`load_series`' fast path (`_small_regular`) gives the normal path's series, or steps aside."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecasting import data
from forecasting.config import parse_config


def _config(**input_parameters: Any) -> Any:
    return parse_config({"input_parameters": {"source_data_url": "upload:x.csv", **input_parameters},
                         "model_parameters": {"models": "naive", "test_values": 3, "prediction_lags": 3}}).config


def _csv(dates: list[str], columns: dict[str, list[str]], header: str | None = None) -> bytes:
    head = header or ",".join(["day", *columns])
    rows = [",".join([d, *(col[i] for col in columns.values())]) for i, d in enumerate(dates)]
    return ("\n".join([head, *rows]) + "\n").encode()


def _numbers(rng: np.random.Generator, n: int) -> list[str]:
    """Plain decimals of varied lengths and signs (the floats pandas' parser must round as the fast path)."""
    values = rng.normal(0, 10.0 ** rng.integers(-3, 8), n)
    return [f"{v:.{int(rng.integers(0, 17))}f}" for v in values]


def _same(a: data.SeriesSet, b: data.SeriesSet) -> None:
    assert a.frequency == b.frequency
    assert a.errors == b.errors
    assert list(a.series) == list(b.series)
    for name in a.series:
        pd.testing.assert_series_equal(a.series[name], b.series[name], check_exact=True, check_freq=True)
        assert a.series[name].index.freq == b.series[name].index.freq
        assert a.series[name].to_numpy().tobytes() == b.series[name].to_numpy().tobytes()  # -0.0 too


DAILY = [d.strftime("%Y-%m-%d") for d in pd.date_range("2019-12-30", periods=400, freq="D")]
MONTHLY = [d.strftime("%Y-%m-%d") for d in pd.date_range("1995-01-01", periods=240, freq="MS")]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("dates", "frequency"), [(DAILY, None), (DAILY, "D"), (MONTHLY, None), (MONTHLY, "MS")])
def test_fast_path_gives_the_normal_series(seed: int, dates: list[str], frequency: str | None) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, len(dates)))
    columns = {f"v{i}": _numbers(rng, n) for i in range(int(rng.integers(1, 4)))}
    columns["v0"][0] = "-0"  # a signed zero and an integer, parsed alike
    columns["v0"][1] = "42"
    config = _config(frequency=frequency, timeseries_names={"v0": "renamed"} if seed % 2 else None)
    csv = _csv(dates[:n], columns)
    fast = data._small_regular(config, data.checked(csv))
    assert fast is not None
    _same(fast, data._prepared(config, data.checked(csv)))
    _same(data.load_series(config, csv), fast)


def test_fast_path_reports_a_series_too_short_as_the_normal_one() -> None:
    config = parse_config({"input_parameters": {"source_data_url": "upload:x.csv"},
                           "model_parameters": {"models": "naive", "test_values": 30, "prediction_lags": 3}}).config
    csv = _csv(DAILY[:20], {"a": [str(i) for i in range(20)]})
    # every series unusable: the fast path steps aside, and the normal path says why
    assert data._small_regular(config, data.checked(csv)) is None
    with pytest.raises(data.DataError, match="only 20 points"):
        data.load_series(config, csv)


@pytest.mark.parametrize(("case", "csv", "config"), [
    ("a gap", _csv(DAILY[:5] + DAILY[6:20], {"a": [str(i) for i in range(19)]}), {}),
    ("unsorted", _csv(DAILY[1:2] + DAILY[:1] + DAILY[2:20], {"a": [str(i) for i in range(20)]}), {}),
    ("a duplicate date", _csv(DAILY[:1] + DAILY[:19], {"a": [str(i) for i in range(20)]}), {}),
    ("an empty cell", _csv(DAILY[:20], {"a": [""] + [str(i) for i in range(19)]}), {}),
    ("a word", _csv(DAILY[:20], {"a": ["x"] + [str(i) for i in range(19)]}), {}),
    ("an exponent", _csv(DAILY[:20], {"a": ["1e3"] + [str(i) for i in range(19)]}), {}),
    ("spaces", _csv(DAILY[:20], {"a": [" 1"] + [str(i) for i in range(19)]}), {}),
    ("quotes", _csv(DAILY[:20], {"a": ['"1"'] + [str(i) for i in range(19)]}), {}),
    ("CRLF", _csv(DAILY[:20], {"a": [str(i) for i in range(20)]}).replace(b"\n", b"\r\n"), {}),
    ("semicolons", _csv(DAILY[:20], {"a": [str(i) for i in range(20)]}).replace(b",", b";"), {}),
    ("date column second", _csv(DAILY[:20], {"a": [str(i) for i in range(20)]}, header="day,a"),
     {"index_column_name": "a"}),
    ("times of day", _csv([f"{d} 00:00" for d in DAILY[:20]], {"a": [str(i) for i in range(20)]}), {}),
    ("an impossible date", _csv(["2021-02-27", "2021-02-28", "2021-02-29", "2021-03-01", "2021-03-02",
                                 "2021-03-03", "2021-03-04", "2021-03-05", "2021-03-06"],
                                {"a": [str(i) for i in range(9)]}), {}),
    ("before pandas' ns range", _csv([f"1600-01-{d:02d}" for d in range(1, 21)],
                                     {"a": [str(i) for i in range(20)]}), {}),
    ("a weekly frequency asked", _csv(DAILY[:20], {"a": [str(i) for i in range(20)]}), {"frequency": "W"}),
    ("a diff column", _csv(DAILY[:20], {"a": [str(i) for i in range(20)]}), {"add_diff_column": "a"}),
    ("dateparser options", _csv(DAILY[:20], {"a": [str(i) for i in range(20)]}), {"dateparser_options": {}}),
])
def test_fast_path_steps_aside_for_anything_else(case: str, csv: bytes, config: dict[str, Any]) -> None:
    parsed = _config(**config)
    assert data._small_regular(parsed, data.checked(csv)) is None, case
    try:  # the normal path decides: the same answer or the same error through load_series
        expected: Any = data._prepared(parsed, data.checked(csv))
    except (data.DataError, ValueError) as exc:
        with pytest.raises(data.DataError):
            data.load_series(parsed, csv)
        expected = exc
    if isinstance(expected, data.SeriesSet):
        _same(data.load_series(parsed, csv), expected)


def test_fast_path_keeps_the_checks_of_a_hostile_file() -> None:
    with pytest.raises(data.DataError, match="columns"):
        data.load_series(_config(), ("d," + ",".join(f"c{i}" for i in range(data.MAX_COLUMNS + 1))).encode()
                         + b"\n2020-01-01,1\n")


def test_fast_path_takes_ascii_digits_only() -> None:
    csv = _csv(DAILY[:20], {"a": ["\u0661\u0662"] + [str(i) for i in range(19)]})  # Arabic-Indic 12
    assert data._small_regular(_config(), data.checked(csv)) is None


def test_decimals_of_up_to_15_digits_parse_as_pandas_parses_them_and_longer_ones_through_pandas() -> None:
    """`_decimals` reads short decimals with Python's float: bit for bit what pandas' CSV parser gives."""
    rng = np.random.default_rng(7)
    digits = rng.integers(1, 16, 200_000)
    texts = []
    for d, point, sign in zip(digits, rng.integers(0, 16, digits.size), rng.random(digits.size) < 0.5, strict=True):
        ds = "".join(map(str, rng.integers(0, 10, d)))
        text = ("-" if sign else "") + (ds if point == 0 or point >= d else f"{ds[:d - point]}.{ds[d - point:]}")
        texts.append(text if len(text) <= 15 else text[:15].rstrip("."))
    texts += ["0.1", "2.675", "-0", "999999999999999", "0.000000000001", "-0.00000000001"]
    longer = [*texts, "9007199254740993", "0.30000000000000004", *(f"{v:.16f}" for v in rng.normal(0, 1e3, 1000))]
    for case in (texts, longer):  # the short ones with Python's float; with a longer one, all through pandas
        read = pd.read_csv(io.BytesIO(("v\n" + "\n".join(case) + "\n").encode()), dtype={"v": float})["v"]
        assert data._decimals(case).tobytes() == read.to_numpy().tobytes()
