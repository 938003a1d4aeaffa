"""A series on the wire: ISO timestamps, float values and the frequency string; exact round trips,
including dates outside the nanosecond range (kept in microseconds, see forecasting.ns_range)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.ns_range import best_unit


def datetime_index(index: pd.Index) -> pd.DatetimeIndex:
    """`index` as a DatetimeIndex: itself when it is one already (`pd.DatetimeIndex(index)` builds a new one each
    time, ~20 µs: a trivial request did that a dozen times)."""
    return index if isinstance(index, pd.DatetimeIndex) else pd.DatetimeIndex(index)


def to_wire(s: pd.Series) -> tuple[list[str], list[float], str]:
    index = datetime_index(s.index)
    freq = index.freqstr if index.freq is not None else (pd.infer_freq(index) or "")
    return wire_timestamps(index), s.to_numpy(dtype=float).tolist(), freq


def wire_timestamps(index: pd.DatetimeIndex) -> list[str]:
    """The timestamps of `to_wire`, alone: what a unit's train start and a forecast's dates need (without a
    Series around them, nor the frequency to name: a unit asks for these a dozen times a request)."""
    # tolist(): Python str straight from the array (a third less than converting each element; the validator
    # does this for every answer's 1,000-point history tail)
    return np.asarray(index.as_unit("us").values).astype("datetime64[us]").astype(str).tolist()


def from_wire(timestamps: list[str], values: list[float], freq: str, name: str | None = None) -> pd.Series:
    if len(timestamps) != len(values):
        raise ValueError(f"{len(timestamps)} timestamps but {len(values)} values")
    index = best_unit(pd.DatetimeIndex(np.array(timestamps, dtype="datetime64[us]")))
    if freq:
        index = pd.DatetimeIndex(index, freq=freq)
    return pd.Series(np.asarray(values, dtype=float), index=index, name=name)


def to_epoch(s: pd.Series) -> tuple[np.ndarray, np.ndarray, str]:
    """The compact wire form: int64 microseconds since the epoch, float64 values and the frequency."""
    index = datetime_index(s.index)
    freq = index.freqstr if index.freq is not None else (pd.infer_freq(index) or "")
    return epoch_us(index), s.to_numpy(dtype=float), freq


def epoch_us(index: pd.DatetimeIndex) -> np.ndarray:
    """The index as int64 microseconds since the epoch."""
    return np.asarray(index.as_unit("us").values).astype("datetime64[us]").astype(np.int64)


def regular_stamps(start_us: int, periods: int, freq: str) -> np.ndarray | None:
    """The timestamps `start_us` and `freq` generate; None when they cannot (no frequency, out of range)."""
    if not freq or periods == 0:
        return None
    try:
        start = pd.Timestamp(np.datetime64(int(start_us), "us"))
        index = pd.date_range(start, periods=periods, freq=freq, unit="us")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return None
    return np.asarray(index.values).astype("datetime64[us]").astype(np.int64)


def from_epoch(stamps_us: np.ndarray, values: np.ndarray, freq: str, name: str | None = None) -> pd.Series:
    """`to_epoch`'s inverse (exact, as `from_wire`)."""
    if len(stamps_us) != len(values):
        raise ValueError(f"{len(stamps_us)} timestamps but {len(values)} values")
    index = best_unit(pd.DatetimeIndex(np.asarray(stamps_us, dtype=np.int64).astype("datetime64[us]")))
    if freq:
        index = pd.DatetimeIndex(index, freq=freq)
    return pd.Series(np.asarray(values, dtype=float), index=index, name=name)


@dataclass(frozen=True, eq=False)
class Tail:
    """The end of a series' history an answer carries for plots, kept as arrays: packed into the BestModel record
    as bytes (`packed`), and made ISO strings (`wire`) only where a user or the historical answer reads it (1,000
    timestamps as strings cost ~0.3 ms to make, ~0.1 to encode and ~0.2 to decode again at every reader)."""

    stamps_us: np.ndarray  # int64 microseconds since the epoch
    values: np.ndarray  # float64

    @classmethod
    def of(cls, s: pd.Series, points: int) -> Tail:
        """The last `points` of `s` (0: none)."""
        end = s.iloc[-points:] if points > 0 else s.iloc[:0]
        return cls(epoch_us(datetime_index(end.index)), end.to_numpy(dtype=float))

    @classmethod
    def from_wire(cls, stamps: list[str], values: list[float]) -> Tail:
        if len(stamps) != len(values):
            raise ValueError(f"{len(stamps)} timestamps but {len(values)} values")
        return cls(np.array(stamps, dtype="datetime64[us]").astype(np.int64), np.asarray(values, dtype=float))

    @classmethod
    def unpacked(cls, stamps_us: bytes, values: bytes) -> Tail:
        """`packed`'s inverse."""
        stamps, floats = np.frombuffer(stamps_us, dtype="<i8"), np.frombuffer(values, dtype="<f8")
        if len(stamps) != len(floats):
            raise ValueError(f"{len(stamps)} timestamps but {len(floats)} values")
        return cls(stamps.astype(np.int64), floats.astype(float))

    def packed(self) -> tuple[bytes, bytes]:
        """(int64 little-endian microseconds, float64 little-endian values)."""
        return self.stamps_us.astype("<i8").tobytes(), self.values.astype("<f8").tobytes()

    def wire(self) -> tuple[list[str], list[float]]:
        """ISO timestamps and values, as `to_wire` writes them."""
        return self.stamps_us.astype("datetime64[us]").astype(str).tolist(), self.values.tolist()

    def __len__(self) -> int:
        return len(self.values)


NO_TAIL = Tail(np.empty(0, dtype=np.int64), np.empty(0, dtype=float))
