"""A series on the wire: ISO timestamps, float values and the frequency string; exact round trips,
including dates outside the nanosecond range (kept in microseconds, see forecasting.ns_range)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.ns_range import best_unit


def to_wire(s: pd.Series) -> tuple[list[str], list[float], str]:
    index = pd.DatetimeIndex(s.index)
    freq = index.freqstr if index.freq is not None else (pd.infer_freq(index) or "")
    timestamps = [str(t) for t in np.asarray(index.as_unit("us").values).astype("datetime64[us]").astype(str)]
    return timestamps, [float(v) for v in s.to_numpy(dtype=float)], freq


def from_wire(timestamps: list[str], values: list[float], freq: str, name: str | None = None) -> pd.Series:
    if len(timestamps) != len(values):
        raise ValueError(f"{len(timestamps)} timestamps but {len(values)} values")
    index = best_unit(pd.DatetimeIndex(np.array(timestamps, dtype="datetime64[us]")))
    if freq:
        index = pd.DatetimeIndex(index, freq=freq)
    return pd.Series(np.asarray(values, dtype=float), index=index, name=name)
