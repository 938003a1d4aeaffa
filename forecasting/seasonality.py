"""Season length implied by a pandas frequency (the usual one cycle: a year, a week, a day, an hour)."""

from __future__ import annotations

import functools
import warnings

import pandas as pd
from pandas.tseries.frequencies import to_offset

# Periods per natural cycle for the base rule of a frequency string (before its multiple).
_CYCLE_BY_RULE: dict[str, int] = {
    "Y": 1,
    "A": 1,
    "BY": 1,
    "BA": 1,
    "YS": 1,
    "AS": 1,
    "BYS": 1,
    "BAS": 1,
    "YE": 1,
    "BYE": 1,
    "Q": 4,
    "QS": 4,
    "BQ": 4,
    "BQS": 4,
    "QE": 4,
    "BQE": 4,
    "M": 12,
    "MS": 12,
    "BM": 12,
    "BMS": 12,
    "ME": 12,
    "BME": 12,
    "SM": 24,
    "SMS": 24,
    "SME": 24,
    "W": 52,
    "D": 7,
    "C": 5,
    "B": 5,
    "H": 24,
    "h": 24,
    "BH": 8,
    "bh": 8,
}
_SECONDS_PER_CYCLE: dict[str, int] = {"min": 3600 * 24, "T": 3600 * 24, "s": 3600, "S": 3600}


def _rule(freq: str) -> tuple[str, int]:
    """A frequency's base rule ("MS", "h", "min", ...) and its multiple (2h -> ("h", 2))."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        offset = to_offset(freq)
    return offset.name.split("-")[0], max(1, offset.n)


def _unit_seconds(rule: str) -> float:
    return pd.Timedelta(1, unit="min" if rule in ("min", "T") else "s").total_seconds()


@functools.lru_cache(maxsize=256)
def season_length(freq: str | None) -> int:
    """1 means no seasonality; multiples shorten the cycle (2h -> 12, 15min -> 96 a day). Remembered: pandas'
    parsing of the frequency costs about 80 µs, and a request's units ask for it a dozen times."""
    if not freq:
        return 1
    rule, multiple = _rule(freq)
    if rule in _SECONDS_PER_CYCLE:
        per_cycle = _SECONDS_PER_CYCLE[rule] / (_unit_seconds(rule) * multiple)
        return max(1, int(round(per_cycle)))
    base = _CYCLE_BY_RULE.get(rule, 1)
    return max(1, base // multiple) if base % multiple == 0 else 1


def usable_season(m: int, n_points: int) -> int:
    """A seasonal model needs at least two full seasons of data; otherwise fall back to none."""
    return m if m > 1 and n_points >= 2 * m else 1


# Every natural cycle of a base rule, shortest first (the first is `season_length`'s): MSTL removes each.
_CYCLES_BY_RULE: dict[str, tuple[int, ...]] = {
    "D": (7, 365), "H": (24, 168), "h": (24, 168), "BH": (8, 40), "bh": (8, 40)
}
_SECONDS_PER_CYCLES: dict[str, tuple[int, ...]] = {
    "min": (3600 * 24, 3600 * 24 * 7), "T": (3600 * 24, 3600 * 24 * 7), "s": (3600, 3600 * 24), "S": (3600, 3600 * 24)
}


def season_lengths(freq: str | None) -> tuple[int, ...]:
    """Every season length a frequency implies (hourly: a day and a week, 24 and 168; daily: a week and a year;
    monthly: a year), shortest first; () when none. The first is always `season_length(freq)`."""
    first = season_length(freq)
    if first <= 1 or not freq:
        return ()
    rule, multiple = _rule(freq)
    if rule in _SECONDS_PER_CYCLES:
        cycles = [max(1, int(round(c / (_unit_seconds(rule) * multiple)))) for c in _SECONDS_PER_CYCLES[rule]]
    else:
        cycles = [c // multiple for c in _CYCLES_BY_RULE.get(rule, (first * multiple,)) if c % multiple == 0]
    return tuple(sorted({first, *(c for c in cycles if c > 1)}))
