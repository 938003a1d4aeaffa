"""Cross-correlation between series and the choice of extra regressors, as TIMEX 1.2.3 computes them
(timexseries/data_prediction/xcorr.py `calc_xcorr`, pipeline.py `get_best_multivariate_predictions`).

Lag convention (TIMEX's): the value at lag `i` correlates the target at time t with the other series at
time t - i (pandas `shift(i)` of the other series), so a positive lag means the other series *leads* the
target by i steps. `matlab_normalized` is numpy's full correlation divided by the norms (MatLab's
`xcorr(x, y, 'normalized')`); the other modes shift the other series, fill the NaNs the shift brings with 0
and correlate as pandas does (`pearson`, `kendall`, `spearman`), vectorized over the lags (TIMEX calls
pandas once per lag and pair: 25 series took 100 s that way); kendall stays scipy's, one lag at a time.

Series of different dates are aligned on the union of their dates and a date a series lacks counts as 0,
the value TIMEX gives the points a shift leaves empty (TIMEX's series always share one CSV index).

An other series becomes an extra regressor of the target when its largest |correlation| over the lags
(the first lag in -L..L on a tie) is above the threshold and found at a lag >= 0 (it leads or moves with
the target), in the `xcorr_mode_target` mode. As TIMEX, the regressor enters the model unshifted: its
history over the target's dates, and its own forecast over the future.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from forecasting.config import XCORR_MODES as MODES
from forecasting.config import TimexConfig


def lags_of(mode: str, max_lags: int, points: int) -> list[int]:
    """The lags TIMEX reports for `points` aligned dates (it clips max_lags differently per mode)."""
    if mode == "matlab_normalized":
        reach = max_lags if max_lags < points else points - 1
    else:
        reach = max_lags if max_lags < points else points
    return list(range(-reach, reach + 1))


def align(series: dict[str, pd.Series]) -> pd.DataFrame:
    """One column per series on the union of their dates; a missing date counts as 0 (see module doc)."""
    frame = pd.DataFrame({name: s.astype("float64") for name, s in series.items()})
    return frame.sort_index().fillna(0.0)


def _matlab_normalized(x: np.ndarray, y: np.ndarray, max_lags: int) -> np.ndarray:
    n = len(x)
    c = np.correlate(x, y, mode="full")
    # sqrt(x·x)·sqrt(y·y) rather than sqrt(x·x · y·y): no overflow on large values (TIMEX's comment).
    with np.errstate(divide="ignore", invalid="ignore"):
        c = c / (np.sqrt(np.dot(x, x)) * np.sqrt(np.dot(y, y)))
    if n > max_lags:
        c = c[n - 1 - max_lags:n + max_lags]
    return c


def _shifted(y: np.ndarray, lags: list[int]) -> np.ndarray:
    """One row per lag: `y` shifted by it (pandas' shift: y[t - lag] at t), the emptied points 0 (TIMEX)."""
    n = len(y)
    out = np.zeros((len(lags), n))
    for row, lag in enumerate(lags):
        if lag >= n or -lag >= n:
            continue
        if lag >= 0:
            out[row, lag:] = y[:n - lag]
        else:
            out[row, :lag] = y[-lag:]
    return out


def _pearson_rows(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Pearson's r of `x` with each row, vectorized (pandas' formula: centred, then normalized)."""
    xm = x - x.mean()
    rm = rows - rows.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (rm @ xm) / np.sqrt((rm * rm).sum(axis=1) * (xm @ xm))
    return np.where(np.isfinite(r), np.clip(r, -1.0, 1.0), np.nan)


def _correlations(x: np.ndarray, y: np.ndarray, lags: list[int], mode: str) -> np.ndarray:
    """`x` against `y` shifted by each lag; the values pandas' Series.corr(method=mode) gives (TIMEX's call)."""
    rows = _shifted(y, lags)
    if mode == "pearson":
        return _pearson_rows(x, rows)
    if mode == "spearman":  # Pearson's r of the ranks (ties averaged), as pandas computes it
        return _pearson_rows(stats.rankdata(x), stats.rankdata(rows, axis=1))
    return np.array([stats.kendalltau(x, row).statistic for row in rows])  # pandas calls scipy's tau-b too


def xcorr_of(target: str, frame: pd.DataFrame, max_lags: int, modes: list[str]) -> dict[str, dict[str, list[float]]]:
    """{mode: {other series: [value at each lag of `lags_of(mode, ...)`]}} for one target."""
    others = [c for c in frame.columns if c != target]
    x = frame[target]
    with warnings.catch_warnings():  # a constant series has no correlation (NaN): nothing to warn about
        warnings.simplefilter("ignore")
        return {mode: _row(x, frame, others, max_lags, mode) for mode in modes}


def _row(x: pd.Series, frame: pd.DataFrame, others: list[str], max_lags: int, mode: str) -> dict[str, list[float]]:
    """{other: values over the lags} for one mode."""
    if mode not in MODES:
        raise ValueError(f"unknown cross-correlation mode '{mode}'; known: {', '.join(MODES)}")
    lags = lags_of(mode, max_lags, len(frame))
    row: dict[str, list[float]] = {}
    for other in others:
        if mode == "matlab_normalized":
            values = _matlab_normalized(x.to_numpy(), frame[other].to_numpy(), max_lags)
        else:
            values = _correlations(x.to_numpy(), frame[other].to_numpy(), lags, mode)
        row[other] = [float(v) for v in values]
    return row


def best_lag(values: list[float], lags: list[int]) -> tuple[int, float] | None:
    """(lag, value) of the largest |value| (first on a tie, NaN skipped: pandas' idxmax); None if all NaN."""
    best: tuple[int, float] | None = None
    for lag, v in zip(lags, values, strict=True):
        if math.isnan(v):
            continue
        if best is None or abs(v) > abs(best[1]):
            best = (lag, v)
    return best


def choose_regressors(row: dict[str, list[float]], lags: list[int], threshold: float) -> list[str]:
    """Others whose strongest correlation is above `threshold` at a lag >= 0 (TIMEX's rule)."""
    chosen = []
    for other, values in row.items():
        found = best_lag(values, lags)
        if found is not None and abs(found[1]) > threshold and found[0] >= 0:
            chosen.append(other)
    return chosen


@dataclass(frozen=True)
class XcorrSettings:
    max_lags: int
    modes: tuple[str, ...]
    mode_target: str
    threshold: float


def settings_of(config: TimexConfig) -> XcorrSettings | None:
    """The config's xcorr settings; None when it has no `xcorr_parameters` section."""
    xp = config.xcorr_parameters
    if xp is None:
        return None
    return XcorrSettings(xp.xcorr_max_lags, tuple(xp.xcorr_mode), str(xp.xcorr_mode_target),
                         xp.xcorr_extra_regressor_threshold)


@dataclass
class SeriesXcorr:
    """What the answer carries for one series (contract key "xcorr")."""

    max_lags: int
    threshold: float
    modes: dict[str, dict[str, list[float]]]
    lags: dict[str, list[int]]
    regressors: list[str] = field(default_factory=list)
    used_by: list[str] = field(default_factory=list)  # the series this one is an extra regressor of (steps too)
    # Its historical steps that have extra regressors (forecasting.historical_multivariate): points known at the
    # step → {"date": the last date known then (ISO), "regressors": [...]}.
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    def awaited(self) -> list[str]:
        """Every series whose forecasts this one's multivariate stages need: its regressors, then those of steps."""
        return list(dict.fromkeys([*self.regressors, *(r for v in self.steps.values() for r in v["regressors"])]))

    def answer(self) -> dict[str, Any]:
        """The answer's "xcorr" (BestModel.xcorr)."""
        return {"max_lags": self.max_lags, "threshold": self.threshold, "modes": self.modes, "lags": self.lags,
                "regressors": list(self.regressors)}

    def to_json(self) -> str:
        # NaN (a constant series) becomes null: the text stays strict JSON.
        modes = {m: {o: [v if math.isfinite(v) else None for v in vs] for o, vs in row.items()}
                 for m, row in self.modes.items()}
        return json.dumps({**self.answer(), "modes": modes, "used_by": self.used_by, "steps": self.steps},
                          allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> SeriesXcorr:
        d = json.loads(text)
        modes = {m: {o: [math.nan if v is None else float(v) for v in vs] for o, vs in row.items()}
                 for m, row in d["modes"].items()}
        return cls(max_lags=int(d["max_lags"]), threshold=float(d["threshold"]), modes=modes,
                   lags={k: [int(v) for v in vs] for k, vs in d["lags"].items()},
                   regressors=list(d.get("regressors", [])), used_by=list(d.get("used_by", [])),
                   steps={k: dict(v) for k, v in (d.get("steps") or {}).items()})


def xcorr_per_series(series: dict[str, pd.Series], settings: XcorrSettings) -> dict[str, SeriesXcorr]:
    """Every series' cross-correlations with the others and its extra regressors (empty with one series:
    TIMEX computes nothing then)."""
    if len(series) < 2:
        return {}
    frame = align(series)
    out = {}
    for name in frame.columns:
        modes = xcorr_of(name, frame, settings.max_lags, list(settings.modes))
        lags = {m: lags_of(m, settings.max_lags, len(frame)) for m in settings.modes}
        regressors = choose_regressors(modes[settings.mode_target], lags[settings.mode_target], settings.threshold)
        out[str(name)] = SeriesXcorr(settings.max_lags, settings.threshold, modes, lags, regressors)
    for name, found in out.items():
        for regressor in found.regressors:
            out[regressor].used_by.append(name)
    return out


# Every pair of series at every lag in every mode: O(series² × lags) correlations, computed once per request
# at the ingestion (kendall on 200 points takes ~1 ms), so the number of series is bounded.
MAX_SERIES = 25
# The ingestion computes xcorr inline, so its work is bounded too: ordered pairs × lags × points, per mode,
# kendall weighted by what it costs here (scipy, one lag at a time: ~20 µs a cell against ~0.3 for pearson).
# 2e8 is about a minute of one core; past it the series are forecast without extra regressors.
MAX_CELLS = 200_000_000
_MODE_COST = {"kendall": 50}


def xcorr_cells(config: TimexConfig, series: Mapping[str, pd.Series]) -> int:
    """The cross-correlation work `series` ask for (ordered pairs × lags × points, per mode, weighted by the
    mode's cost), the figure MAX_CELLS bounds; 0 when none is asked."""
    found = settings_of(config)
    if found is None or len(series) < 2:
        return 0
    points = max(len(s) for s in series.values())
    lags = 2 * min(found.max_lags, points) + 1
    return len(series) * (len(series) - 1) * lags * points * sum(_MODE_COST.get(m, 1) for m in found.modes)


def request_xcorr(config: TimexConfig, series: dict[str, pd.Series]) -> tuple[dict[str, SeriesXcorr], str | None]:
    """(per-series xcorr, a warning in plain words when it is not computed although asked for)."""
    found = settings_of(config)
    if found is None or len(series) < 2:
        return {}, None
    if len(series) > MAX_SERIES:
        return {}, (f"xcorr_parameters: cross-correlation is computed for at most {MAX_SERIES} series and this "
                    f"request has {len(series)}; the series are forecast without extra regressors")
    points = max(len(s) for s in series.values())
    lags = 2 * min(found.max_lags, points) + 1
    if xcorr_cells(config, series) > MAX_CELLS:
        return {}, (f"xcorr_parameters: {len(series)} series of up to {points} points at {lags} lags in "
                    f"{', '.join(found.modes)} is more cross-correlation work than one request may ask for; "
                    "use fewer series, shorter series, a smaller xcorr_max_lags or cheaper modes (kendall "
                    "costs most); the series are forecast without extra regressors")
    return xcorr_per_series(series, found), None
