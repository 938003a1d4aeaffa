"""The window's compact stores (numpy rings): duplicates after the ring wraps, gaps across the wrap, the labels
of a point off the grid, and the duplicate check against a plain set of the stamps kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.live.observations import Observation
from forecasting.live.window import Added, Window, _Stamps


def obs(stamp: str | pd.Timestamp, value: float) -> Observation:
    return Observation("s", pd.Timestamp(stamp), float(value))


@pytest.mark.parametrize("minutes", [0, 20])  # on the grid (the label's flag) or off it (the stamps' ring)
def test_duplicates_are_told_from_late_points_after_the_ring_wraps(minutes: int) -> None:
    window = Window("h", window_points=20, allowed_lateness=2)
    labels = pd.date_range("2026-01-01", periods=75, freq="h")  # the rings wrap three times and a bit
    stamps = labels + pd.Timedelta(minutes=minutes)
    for i, stamp in enumerate(stamps):
        assert window.add(obs(stamp, i)) is Added.INCLUDED
    final = stamps[:-3]  # the last 3 buckets are within the lateness
    assert (window._seen_final if minutes else window._observed).start != 0  # wrapped, not at a boundary
    for stamp in final[-20:]:  # the last 20 final observations are remembered: a redelivery
        assert window.add(obs(stamp, -1)) is Added.DUPLICATE
    for stamp in final[:-20]:  # older ones are not kept any more: too late, as a new observation there
        assert window.add(obs(stamp, -1)) is Added.TOO_LATE
    other = labels[-4] + pd.Timedelta(minutes=30 if minutes == 0 else 0)  # a new stamp in a final bucket
    assert window.add(obs(other, -1)) is Added.TOO_LATE
    assert (window.duplicates, window.too_late, window.included) == (20, len(final) - 20 + 1, 75)
    expected = pd.Series(np.arange(72.0), index=labels[:-3])
    pd.testing.assert_series_equal(window.final(), expected.iloc[-20:], check_freq=False, check_names=False)
    assert window.final().index.freqstr == "h"


def test_a_gap_across_the_wrap_is_filled_as_the_csv_fills_it() -> None:
    rng = np.random.default_rng(3)
    # gaps filled across the rings' end (every 10 points: points 19-20, 29-30, 39-41) and inside them
    days = [d for d in range(60) if d not in (13, 14, 15, 19, 20, 29, 30, 39, 40, 41)]
    values = rng.normal(10, 2, len(days))
    window = Window("D", window_points=10, allowed_lateness=1)
    taken = []
    for day, value in zip(days, values, strict=True):
        window.add(obs(pd.Timestamp("2026-01-01") + pd.Timedelta(days=day), value))
        taken += window.take_final()
    index = pd.DatetimeIndex([pd.Timestamp("2026-01-01") + pd.Timedelta(days=d) for d in days])
    csv = pd.Series(values, index=index).resample("D").mean().interpolate(method="time", limit_area="inside")
    final = csv.iloc[:-2]  # the newest two buckets are provisional
    assert window.gaps_filled == 10
    pd.testing.assert_series_equal(pd.Series(dict(taken)), final, check_freq=False)
    pd.testing.assert_series_equal(window.final(), final.iloc[-10:], check_freq=False, check_names=False)
    pd.testing.assert_series_equal(window.series(), csv.iloc[-12:], check_freq=False, check_names=False)


def test_observations_of_a_bucket_out_of_order_are_still_found_by_a_binary_search() -> None:
    window = Window("D", window_points=200, allowed_lateness=1)
    rng = np.random.default_rng(7)
    stamps = []
    for day in range(30):  # four observations a day, in any order within the day
        hours = rng.permutation([0, 6, 12, 18])
        stamps += [pd.Timestamp("2026-01-01") + pd.Timedelta(days=day, hours=int(h)) for h in hours]
    for i, stamp in enumerate(stamps):
        assert window.add(obs(stamp, i)) is Added.INCLUDED
    assert window._seen_final.unordered_at == -1  # in increasing order: the binary search, never the scan
    for stamp in stamps[: 4 * 28]:  # every final one (the last two days are provisional or within the lateness)
        assert window.add(obs(stamp, -1)) is Added.DUPLICATE
    assert window.duplicates == 4 * 28


def test_a_point_off_the_grid_keeps_its_label() -> None:
    # A bucket the history made final gets a new observation within the lateness: it becomes final again, after
    # the newest final point (a point out of the grid's order): the labels are kept as they come from then on.
    window = Window("D", window_points=5, allowed_lateness=2)
    window.seed(pd.Series([1.0, 2.0, 3.0], index=pd.date_range("2026-01-01", periods=3, freq="D")))
    assert window.add(obs("2026-01-02 12:00", 20)) is Added.INCLUDED  # Jan 2 is within 2 points of Jan 3
    assert window.add(obs("2026-01-02", 9)) is Added.DUPLICATE  # the history's own stamp
    for day in range(5, 12):
        window.add(obs(f"2026-01-{day:02d}", day))
    taken = window.take_final()
    assert [t for t, _ in taken][:4] == [pd.Timestamp(f"2026-01-0{d}") for d in (1, 2, 3, 2)]
    assert window._final_labels is not None
    labels = window._final_labels.ordered().view("M8[ns]")
    assert list(pd.DatetimeIndex(labels)) == [t for t, _ in taken][-5:]
    assert window._final.ordered().tolist() == [v for _, v in taken][-5:]
    assert window.add(obs("2026-01-02 12:00", 1)) is Added.DUPLICATE  # off the grid: the stamps' ring
    for label, observed in zip(labels, window._observed.ordered(), strict=True):  # on it: the labels kept
        assert window.add(obs(pd.Timestamp(label), 0)) is (Added.DUPLICATE if observed else Added.TOO_LATE)


@pytest.mark.parametrize("freq", ["15min", "D", "MS", "W-SUN"])
def test_a_redelivery_on_the_grid_is_found_by_its_label_and_a_filled_gap_is_too_late(freq: str) -> None:
    grid = pd.date_range("2026-01-04", periods=40, freq=freq)
    observed = [label for k, label in enumerate(grid) if k % 7 not in (3, 4)]  # gaps of two points
    window = Window(freq, window_points=12, allowed_lateness=1)
    for label in observed:
        assert window.add(obs(label, 1.0)) is Added.INCLUDED
    final = grid[grid < observed[-1] - window.offset]  # the newest and the one within the lateness: not final
    kept = set(final[-12:])
    assert window.final().index.equals(final[-12:])
    for label in final:
        expected = Added.DUPLICATE if label in kept and label in observed else Added.TOO_LATE
        assert window.add(obs(label, 2.0)) is expected, label
    assert window.series().max() == 1.0  # nothing applied twice


@pytest.mark.parametrize("capacity", [1, 7, 64])
def test_the_stamps_found_are_those_of_the_last_capacity_added(capacity: int) -> None:
    rng = np.random.default_rng(capacity)
    stamps = _Stamps(capacity)
    added: list[int] = []
    now = 1_000
    for k in range(300):
        now += 2 * int(rng.integers(1, 5))
        # now and then one out of order (odd: no stamp comes twice, as in a window)
        ns = now - 2 * (k // 50) - 1 - 2 * int(rng.integers(0, 20)) if k % 50 == 49 else now
        stamps.add(pd.Timestamp(ns))
        added.append(ns)
        kept = set(added[-capacity:])
        assert len(stamps) == len(kept) == min(k + 1, capacity)
        assert stamps.ordered().tolist() == added[-capacity:]
        for probe in rng.integers(now - 120, now + 2, 8).tolist() + added[-capacity:][:3]:
            assert stamps.holds(probe) == (probe in kept), (k, probe)
