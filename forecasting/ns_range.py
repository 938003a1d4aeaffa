"""Dates outside pandas' nanosecond range (1677-09-21 .. 2262-04-11).

The core keeps such indexes in microseconds (pandas 2 non-ns units). Libraries that insist on ns
datetimes (prophet) get the dates shifted by a multiple of 400 years: the Gregorian calendar repeats
exactly every 400 years (same weekdays, same leap days), so seasonality is unchanged.
"""

from __future__ import annotations

import math

import pandas as pd

_NS_FIRST_YEAR = 1678  # first whole year inside the ns range
_NS_LAST_YEAR = 2261  # last whole year inside it
GREGORIAN_CYCLE_YEARS = 400


def in_ns_range(index: pd.DatetimeIndex) -> bool:
    return len(index) == 0 or (index.min().year >= _NS_FIRST_YEAR and index.max().year <= _NS_LAST_YEAR)


def best_unit(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """ns when every date fits (what most libraries expect), else microseconds."""
    return index.as_unit("ns") if in_ns_range(index) else index.as_unit("us")


def ns_shift_years(first: pd.Timestamp, last: pd.Timestamp) -> int:
    """Years (a multiple of 400) to add so that [first, last] fits the ns range; 0 if it already does."""
    if first.year < _NS_FIRST_YEAR:
        shift = math.ceil((_NS_FIRST_YEAR - first.year) / GREGORIAN_CYCLE_YEARS) * GREGORIAN_CYCLE_YEARS
    elif last.year > _NS_LAST_YEAR:
        shift = -math.ceil((last.year - _NS_LAST_YEAR) / GREGORIAN_CYCLE_YEARS) * GREGORIAN_CYCLE_YEARS
    else:
        return 0
    if not (first.year + shift >= _NS_FIRST_YEAR and last.year + shift <= _NS_LAST_YEAR):
        raise ValueError(
            f"dates {first.date()}..{last.date()} span more than the ~580 years that "
            "nanosecond datetimes can hold"
        )
    return shift


def shift_years(index: pd.DatetimeIndex, years: int) -> pd.DatetimeIndex:
    if years == 0:
        return index
    return pd.DatetimeIndex(index.as_unit("us") + pd.DateOffset(years=years))


def future_index(index: pd.DatetimeIndex, periods: int) -> pd.DatetimeIndex:
    """The `periods` timestamps after the end of a regular index, in the same unit."""
    freq = index.freq or pd.infer_freq(index)
    return pd.date_range(start=index[-1], periods=periods + 1, freq=freq, unit=index.unit)[1:]
