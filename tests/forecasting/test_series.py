from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.series import from_wire, to_wire


@pytest.mark.parametrize(
    "index",
    [
        pd.date_range("1600-01-01", periods=30, freq="YS", unit="us"),
        pd.date_range("1700-01-01", periods=30, freq="YS"),
        pd.date_range("2020-02-29 10:15", periods=30, freq="15min"),
        pd.date_range("2000-01-31", periods=30, freq="ME"),
        pd.date_range("2261-12-01", periods=10, freq="MS", unit="us"),
    ],
)
def test_exact_round_trip(index: pd.DatetimeIndex) -> None:
    s = pd.Series(np.random.default_rng(0).normal(size=len(index)) * 1e6 + 0.1, index=index, name="x")
    timestamps, values, freq = to_wire(s)
    assert all(isinstance(t, str) for t in timestamps) and freq == index.freqstr
    back = from_wire(timestamps, values, freq, name="x")
    pd.testing.assert_series_equal(back, s, check_freq=True)
    assert back.index.freq == index.freq


def test_1700_is_iso() -> None:
    s = pd.Series([1.0, 2.0, 3.0], index=pd.date_range("1700-01-01", periods=3, freq="YS"))
    timestamps, _, freq = to_wire(s)
    assert timestamps[0].startswith("1700-01-01T00:00:00") and freq == "YS-JAN"


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        from_wire(["2020-01-01", "2020-01-02"], [1.0], "D")
