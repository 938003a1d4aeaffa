"""The rolling window: the CSV's grid and gap filling, duplicates once, lateness, order independence, bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.data import load_series
from forecasting.live.observations import Observation
from forecasting.live.window import Added, Window
from tests.plugins.core_series import make_config, to_csv


def obs(stamp: str | pd.Timestamp, value: float, series: str = "s") -> Observation:
    return Observation(series, pd.Timestamp(stamp), float(value))


@pytest.mark.parametrize("freq", ["D", "h", "15min", "W-SUN", "MS", "ME", "QS", "B"])
def test_buckets_are_the_csv_resample_buckets(freq: str) -> None:
    rng = np.random.default_rng(1)
    start = pd.Timestamp("2026-01-03 05:17")
    stamps = sorted(start + pd.Timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 200, 300))
    expected = pd.Series(1.0, index=pd.DatetimeIndex(stamps)).resample(freq).mean().dropna().index
    window = Window(freq, window_points=1000, allowed_lateness=0)
    assert sorted({window.bucket(s) for s in stamps}) == list(expected)


def test_gaps_and_shared_buckets_are_filled_as_the_csv_loader_fills_them() -> None:
    rows = [("2026-01-01 08:00", 1.0), ("2026-01-01 20:00", 3.0), ("2026-01-02", 4.0), ("2026-01-05", 10.0),
            ("2026-01-06", 11.0), ("2026-01-09 12:00", 2.0), ("2026-01-10", 5.0)]
    csv = to_csv(pd.DataFrame(rows, columns=["date", "s"]))
    config = make_config(input_parameters={"index_column_name": "date", "frequency": "D"},
                         model_parameters={"test_values": 1})
    expected = load_series(config, csv).series["s"]
    window = Window("D", window_points=100, allowed_lateness=0, name="s")
    for stamp, value in rows:
        assert window.add(obs(stamp, value)) is Added.INCLUDED
    got = window.series()
    pd.testing.assert_series_equal(got, expected, check_names=False, check_freq=False)
    assert got.index.freqstr == "D"
    assert window.gaps_filled == 4  # Jan 3, 4, 7, 8 (the last bucket, Jan 10, is still provisional)


def stream(n: int, seed: int = 0) -> list[Observation]:
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2026-01-01", periods=n, freq="h")
    keep = rng.random(n) > 0.1  # some gaps
    return [obs(s, v) for s, v, k in zip(stamps, rng.normal(10, 2, n), keep, strict=True) if k]


def fold(window: Window, observations: list[Observation]) -> tuple[list[Added], pd.Series]:
    added: list[Added] = []
    taken: list[tuple[pd.Timestamp, float]] = []
    for o in observations:
        added.append(window.add(o))
        taken += window.take_final()
    return added, pd.Series(dict(taken))


def test_out_of_order_within_the_lateness_equals_the_in_order_result() -> None:
    data = stream(400)
    rng = np.random.default_rng(5)
    shuffled = []  # local shuffles: a few points back at most
    for start in range(0, len(data), 4):
        block = data[start:start + 4]
        shuffled += [block[i] for i in rng.permutation(len(block))]
    lateness = 6
    buckets = [o.timestamp for o in shuffled]
    assert max((max(buckets[:i + 1]) - b) / pd.Timedelta("1h") for i, b in enumerate(buckets)) <= lateness
    in_order, out_of_order = Window("h", 1000, lateness), Window("h", 1000, lateness)
    added_a, taken_a = fold(in_order, data)
    added_b, taken_b = fold(out_of_order, shuffled)
    assert set(added_a) == set(added_b) == {Added.INCLUDED}
    pd.testing.assert_series_equal(taken_a, taken_b)
    pd.testing.assert_series_equal(in_order.series(), out_of_order.series())
    assert in_order.included == out_of_order.included == len(data)
    assert in_order.last_timestamp == out_of_order.last_timestamp == data[-1].timestamp


def test_too_late_is_counted_and_left_out() -> None:
    window = Window("D", 100, allowed_lateness=2)
    for day in range(1, 11):
        window.add(obs(f"2026-01-{day:02d}", day))
    before = window.series()
    assert window.add(obs("2026-01-07 06:00", 70)) is Added.TOO_LATE  # 10 - 7 = 3 points late
    assert window.add(obs("2025-12-01", 1)) is Added.TOO_LATE
    assert window.add(obs("2026-01-08 12:00", 80)) is Added.INCLUDED  # within 2 points: averaged into Jan 8
    assert window.too_late == 2
    after = window.series()
    assert after.drop(pd.Timestamp("2026-01-08")).equals(before.drop(pd.Timestamp("2026-01-08")))
    assert after[pd.Timestamp("2026-01-08")] == (8 + 80) / 2


def test_duplicates_are_applied_once_final_or_not() -> None:
    window = Window("D", 100, allowed_lateness=1)
    for day in range(1, 6):
        window.add(obs(f"2026-01-{day:02d}", day))
    included = window.included
    assert window.add(obs("2026-01-05", 99)) is Added.DUPLICATE  # provisional bucket
    assert window.add(obs("2026-01-01", 99)) is Added.DUPLICATE  # final: a redelivery, not "late"
    assert window.included == included and window.duplicates == 2
    assert window.series().tolist() == [1, 2, 3, 4, 5]


def test_final_points_are_taken_once_and_provisional_ones_follow_them() -> None:
    window = Window("D", 100, allowed_lateness=2)
    for day in range(1, 6):
        window.add(obs(f"2026-01-{day:02d}", day))
    assert window.take_final() == [(pd.Timestamp("2026-01-01"), 1.0), (pd.Timestamp("2026-01-02"), 2.0)]
    assert window.take_final() == []
    assert window.provisional().tolist() == [3, 4, 5]
    assert window.provisional().index[0] == pd.Timestamp("2026-01-03")


def test_seeded_history_is_final_and_counted() -> None:
    history = pd.Series([1.0, 2.0, 3.0], index=pd.date_range("2026-01-01", periods=3, freq="D"))
    window = Window("D", 100, allowed_lateness=1)
    window.seed(history)
    assert window.included == 3 and [v for _, v in window.take_final()] == [1, 2, 3]
    assert window.add(obs("2026-01-02", 5)) is Added.DUPLICATE
    assert window.add(obs("2026-01-05", 5)) is Added.INCLUDED
    assert window.series().tolist() == [1, 2, 3, 4, 5]  # Jan 4 interpolated; Jan 5 provisional


def test_memory_is_bounded_however_long_the_stream_runs() -> None:
    window = Window("min", window_points=50, allowed_lateness=5)
    stamps = pd.date_range("2026-01-01", periods=5_000, freq="min")
    for i, stamp in enumerate(stamps):
        window.add(obs(stamp, i))
        window.take_final()
    assert len(window.final()) == 50
    assert len(window._seen_final) <= 50
    assert len(window._open) <= 6
    assert window.included == 5_000


def test_only_fixed_length_frequencies_take_multiples() -> None:
    Window("2h", 10, 0)
    with pytest.raises(ValueError, match="multiples"):
        Window("2MS", 10, 0)


@pytest.mark.parametrize("lateness", [0, 3])
def test_the_provisional_values_and_the_last_label_are_those_of_the_series(lateness: int) -> None:
    # The hot path's tail (no pandas without a gap) against the pandas one, with and without gaps among the
    # provisional buckets and between them and the final ones.
    window = Window("D", window_points=100, allowed_lateness=lateness)
    rng = np.random.default_rng(5)
    days = [0, 1, 2, 3, 4, 6, 7, 8, 11, 12, 13, 14, 15, 16, 20, 21]
    for day in days:
        window.add(obs(pd.Timestamp("2026-01-01") + pd.Timedelta(days=day), float(rng.normal(10, 2))))
        np.testing.assert_array_equal(window.provisional_values(), window.provisional().to_numpy(dtype=float))
        assert window.last_label == window.series().index[-1]


@pytest.mark.parametrize("freq", ["D", "15min", "MS"])
@pytest.mark.parametrize("lateness", [0, 2])
def test_the_provisional_values_follow_the_grid_of_fixed_and_calendar_frequencies(freq: str, lateness: int) -> None:
    # A fixed-length frequency checks the tail's contiguity in ns, a calendar one with its offset: the same tail
    # as the pandas one, with gaps and with observations off the grid within a bucket.
    window = Window(freq, window_points=100, allowed_lateness=lateness)
    start = pd.Timestamp("2026-01-01")
    for k in [0, 1, 2, 4, 5, 6, 9, 10, 11, 15]:
        label = start + k * window.offset
        window.add(obs(label, float(k)))
        window.add(obs(label + pd.Timedelta(minutes=7), float(k) + 0.5))  # within the same bucket
        np.testing.assert_array_equal(window.provisional_values(), window.provisional().to_numpy(dtype=float))


@pytest.mark.parametrize("tz", [None, "Europe/Rome"])
def test_a_stamp_on_the_grid_is_its_own_label_as_the_arithmetic_gives_it(tz: str | None) -> None:
    window = Window("15min", window_points=10, allowed_lateness=0)
    first = pd.Timestamp("2026-03-29 00:20", tz=tz).as_unit("ns")  # the reader's unit (the origin's)
    origin = first.normalize()
    step = pd.Timedelta(window.offset)  # as Window.bucket's arithmetic
    on = [pd.Timestamp(t, tz=tz).as_unit("ns") for t in ("2026-03-29 00:30", "2026-03-29 03:45", "2026-03-30")]
    for stamp in [first, *on, on[-1].as_unit("s"), on[-1].as_unit("us") + pd.Timedelta(1, "us")]:
        expected = origin + ((stamp - origin) // step) * step
        label = window.bucket(stamp)
        assert (label, label.unit, str(label.tz), label.isoformat()) == (
            expected, expected.unit, str(expected.tz), expected.isoformat())
