"""One live series as a bounded rolling window on the regular grid of its frequency.

Observations fall in the grid's buckets the way `forecasting.data` resamples a CSV with a forced frequency
(`resample(freq).mean()`: a fixed-length frequency counts from midnight of the first day; W, ME, QE, YE label a
bucket by its right edge, the others by their left edge); several observations in one bucket are averaged,
and the gaps between buckets are interpolated in time, inside only, with the same pandas call as the CSV's
(`interpolate(method="time", limit_area="inside")`). Multiples are supported for fixed-length frequencies
(15min, 2h) only.

`allowed_lateness` is in grid points: with `latest` the newest bucket seen, an observation whose bucket is
older than `latest - allowed_lateness` points is too late (counted, returned as `TOO_LATE`, left out); the
buckets before that line are *final*: nothing can change them any more, so a model may consume them
(`take_final`), while the newer ones are *provisional* (`provisional`: they may still get observations). Any
arrival order within the lateness gives the same buckets, so the same final points, as the in-order stream:
a bucket's mean is `math.fsum` of its values (independent of order) over their count.

A duplicate (same timestamp as an observation already applied, final or not) is applied once: the first one
seen stays, the later one is returned as `DUPLICATE` (a redelivery after a restart). Memory per series is
bounded: at most `window_points` final points, the raw observations of the provisional buckets only, and the
timestamps of the final observations, to recognise duplicates: those on the grid (at their bucket's label) as
long as their point is kept, the last `window_points` of the others. All in numpy rings, 9 bytes a final point
(and 8 an observation off the grid; up to a quarter more while the rings grow), where Python objects cost about
250: the final values (float64; their labels are the grid's up to the last one, kept as int64 too
only once a point breaks that grid), a byte a point telling whether an observation was at its label, and the
other final observations' timestamps (int64 ns, in the order they became final, a bucket's sorted: a binary
search). Only an observation no newer than the newest final one needs a look (a redelivery or a late one: an
in-order stream never looks).

`included` counts the observations applied in all (history points too): it only grows, grows by one per new
observation and is the same on a replay, so it is the basis of a revision number.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import DateOffset, Tick

from forecasting.live.observations import Observation

# pandas' resample labels and closes these on the right (the end of the week, month, quarter, year).
_RIGHT_EDGED = ("W", "ME", "QE", "YE", "BME", "BQE", "BYE", "SME", "M", "Q", "Y", "A", "BM", "BQ", "BY", "BA")


class Added(Enum):
    INCLUDED = "included"
    DUPLICATE = "duplicate"
    TOO_LATE = "too_late"


def _right_edged(offset: DateOffset) -> bool:
    return offset.name.split("-")[0] in _RIGHT_EDGED


class Window:
    def __init__(self, freq: str, window_points: int, allowed_lateness: int, name: str = "") -> None:
        if window_points < 2:
            raise ValueError("window_points must be at least 2")
        if allowed_lateness < 0:
            raise ValueError("allowed_lateness must be 0 or more points")
        self.offset = to_offset(freq)
        if not isinstance(self.offset, Tick) and self.offset.n != 1:
            raise ValueError(f"frequency {freq!r}: multiples only of fixed-length frequencies (e.g. 15min, 2h)")
        self.freq, self.name = self.offset.freqstr, name
        self.window_points, self.allowed_lateness = window_points, allowed_lateness
        self._origin: pd.Timestamp | None = None  # grid origin of fixed-length frequencies
        self._final = _Ring(window_points, np.float64)  # the final values; their labels are the grid's ...
        self._final_labels: _Ring | None = None  # ... unless a point broke it (then kept here, int64 ns)
        self._observed = _Ring(window_points, np.uint8)  # per final point: 1 if an observation was at its label
        self._last: tuple[pd.Timestamp, float] | None = None  # the newest final point
        self._untaken: list[tuple[pd.Timestamp, float]] = []
        self._open: dict[pd.Timestamp, dict[pd.Timestamp, float]] = {}
        self._seen_final = _Stamps(window_points)  # the final observations off the grid
        self._newest_final: pd.Timestamp | None = None  # the newest final observation: a newer one is none of them
        self.latest: pd.Timestamp | None = None
        self._horizon_of: tuple[pd.Timestamp, pd.Timestamp] | None = None  # (latest, its lateness horizon)
        self._lateness_delta = (pd.Timedelta(allowed_lateness * self.offset) if isinstance(self.offset, Tick)
                                else None)
        # a fixed-length frequency's step in ns: the grid's checks compare ns (Timestamp arithmetic costs µs)
        self._step_ns: int | None = self.offset.nanos if isinstance(self.offset, Tick) else None
        self.last_timestamp: pd.Timestamp | None = None
        self.included = self.duplicates = self.too_late = self.gaps_filled = 0

    def bucket(self, stamp: pd.Timestamp) -> pd.Timestamp:
        """The grid label `resample(freq)` gives `stamp`."""
        if self._step_ns is not None:
            if self._origin is None:
                self._origin = stamp.normalize()  # resample's origin="start_day"
            origin = self._origin
            if ((stamp.value - origin.value) % self._step_ns == 0 and stamp.unit == "ns" == origin.unit
                    and stamp.tz == origin.tz):
                return stamp  # on the grid (the usual case): its own label, as the arithmetic below gives it
            step = pd.Timedelta(self.offset)
            return self._origin + ((stamp - self._origin) // step) * step
        day = stamp.normalize()
        return self.offset.rollforward(day) if _right_edged(self.offset) else self.offset.rollback(day)

    def seed(self, history: pd.Series) -> None:
        """A regular history (forecasting.data's series: gaps already filled) before any observation: final."""
        if self.included:
            raise ValueError("seed a window before adding observations")
        values = history.dropna()
        if values.empty:
            return
        index = pd.DatetimeIndex(values.index)
        if isinstance(self.offset, Tick):
            self._origin = index[0]
        for stamp, value in zip(index, values.to_numpy(dtype=float), strict=True):
            self._finish(pd.Timestamp(stamp), float(value), [pd.Timestamp(stamp)])
        self.latest = self.last_timestamp = pd.Timestamp(index[-1])
        self.included = len(values)

    def add(self, obs: Observation) -> Added:
        stamp = obs.timestamp
        label = self.bucket(stamp)
        newest = self._newest_final  # an observation newer than every final one (the usual case) is none of them
        if (newest is not None and stamp <= newest and self._was_final(stamp, label)
                or stamp in self._open.get(label, ())):
            self.duplicates += 1
            return Added.DUPLICATE
        if self.latest is not None and label < self._horizon(self.latest):
            self.too_late += 1
            return Added.TOO_LATE
        self._open.setdefault(label, {})[stamp] = obs.value
        self.included += 1
        self.last_timestamp = stamp if self.last_timestamp is None else max(self.last_timestamp, stamp)
        if self.latest is None or label > self.latest:
            self.latest = label
            self._seal()
        return Added.INCLUDED

    def _horizon(self, latest: pd.Timestamp) -> pd.Timestamp:
        if self._horizon_of is None or self._horizon_of[0] != latest:  # an offset's arithmetic costs µs: once
            # a fixed-length frequency's lateness is a Timedelta (a Tick's arithmetic is its Timedelta's)
            back = self._lateness_delta if self._lateness_delta is not None else self.allowed_lateness * self.offset
            self._horizon_of = (latest, latest - back if self.allowed_lateness else latest)
        return self._horizon_of[1]

    def _seal(self) -> None:
        """Buckets older than the lateness become final, in order, with the gaps before them filled."""
        assert self.latest is not None
        horizon = self._horizon(self.latest)
        for label in sorted(b for b in self._open if b < horizon):
            raw = self._open.pop(label)
            # a bucket's stamps sorted (its own time span: the ring stays sorted whatever the arrival order)
            self._finish(label, math.fsum(raw.values()) / len(raw), sorted(raw) if len(raw) > 1 else list(raw))

    def _finish(self, label: pd.Timestamp, value: float, stamps: list[pd.Timestamp]) -> None:
        if self._last is not None and not self._next(self._last[0], label):
            last, last_value = self._last
            grid = pd.date_range(last, label, freq=self.offset)
            if len(grid) > 2:  # a gap: filled as the CSV's
                filled = pd.Series([last_value] + [np.nan] * (len(grid) - 2) + [value], index=grid)
                filled = filled.interpolate(method="time", limit_area="inside")
                for stamp, gap_value in filled.iloc[1:-1].items():
                    self._append(pd.Timestamp(stamp), float(gap_value))
                self.gaps_filled += len(grid) - 2
            if len(grid) <= 2 or grid[-1] != label:
                # not the next grid point (a bucket a seeded history made final got an observation within the
                # lateness): from now on the labels are kept as they come
                self._keep_labels()
        on_label = False
        for stamp in stamps:
            if stamp == label:
                on_label = True
            else:
                self._seen_final.add(stamp)
        if self._newest_final is None or stamps[-1] > self._newest_final:  # stamps: sorted
            self._newest_final = stamps[-1]
        self._append(label, value, on_label)

    def _append(self, label: pd.Timestamp, value: float, observed: bool = False) -> None:
        self._final.append(value)
        self._observed.append(observed)
        if self._final_labels is not None:
            self._final_labels.append(label.value)
        self._last = point = (label, value)
        self._untaken.append(point)

    def _was_final(self, stamp: pd.Timestamp, label: pd.Timestamp) -> bool:
        """Whether an observation at `stamp` (in bucket `label`) is among the final ones kept."""
        if stamp != label:
            return self._seen_final.holds(stamp.value)
        if self._final_labels is not None:
            at = np.flatnonzero(self._final_labels.ordered() == label.value)
            return bool(self._observed.ordered()[at].any())
        assert self._last is not None  # a final observation was seen
        last, n = self._last[0], len(self._final)
        if label > last:
            return False
        if isinstance(self.offset, Tick):
            back, off = divmod(last.value - label.value, self.offset.nanos)
        else:  # a label is on the offset: the grid from it to the last one
            back, off = len(pd.date_range(label, last, freq=self.offset)) - 1, 0
        return off == 0 and back < n and bool(self._observed.at(n - 1 - back))

    def _labels(self) -> pd.DatetimeIndex:
        """The labels of the final points kept, oldest first."""
        if self._final_labels is not None:
            return pd.DatetimeIndex(self._final_labels.ordered().view("M8[ns]"))
        if self._last is None:
            return pd.DatetimeIndex([])
        return pd.date_range(end=self._last[0], periods=len(self._final), freq=self.offset)

    def _keep_labels(self) -> None:
        if self._final_labels is None:
            self._final_labels = _Ring(self.window_points, np.int64)
            for ns in self._labels().asi8:
                self._final_labels.append(int(ns))

    def take_final(self) -> list[tuple[pd.Timestamp, float]]:
        """The final points not taken yet, in order (what a live model folds in): plain pairs, as a pandas
        Series with its frequency would cost more than the window's own work on each observation."""
        taken, self._untaken = self._untaken, []
        return taken

    def provisional(self) -> pd.Series:
        """The points after the final ones: bucket means with the gaps between them filled; they may change."""
        if not self._open:
            return self._series(pd.Series([], index=pd.DatetimeIndex([]), dtype=float))
        labels = sorted(self._open)
        means = pd.Series([math.fsum(self._open[b].values()) / len(self._open[b]) for b in labels], index=labels)
        if self._last is not None:
            means = pd.concat([pd.Series([self._last[1]], index=[self._last[0]]), means])
        grid = pd.date_range(means.index[0], means.index[-1], freq=self.offset)
        filled = means.reindex(grid).interpolate(method="time", limit_area="inside")
        return self._series(filled.iloc[1:] if self._last is not None else filled)

    def provisional_values(self) -> np.ndarray:
        """`provisional()`'s values alone, without pandas when the provisional buckets follow the last final
        one with no gap (the usual case: nothing to interpolate): the live hot path's tail."""
        if not self._open:
            return np.empty(0)
        labels = sorted(self._open) if len(self._open) > 1 else list(self._open)
        if not self._follow_on(labels):
            return self.provisional().to_numpy(dtype=float)  # a gap: interpolated as the CSV's
        return np.array([math.fsum(self._open[b].values()) / len(self._open[b]) for b in labels], dtype=float)

    def _follow_on(self, labels: list[pd.Timestamp]) -> bool:
        """Whether `labels` (sorted) follow the last final point (or each other, with none) one grid step apart."""
        previous = self._last[0] if self._last is not None else None
        for label in labels:
            if previous is not None and not self._next(previous, label):
                return False
            previous = label
        return True

    def _next(self, previous: pd.Timestamp, label: pd.Timestamp) -> bool:
        """`label == previous + offset`; a fixed-length frequency compares ns (`+ offset` costs µs)."""
        if self._step_ns is not None:
            return label.value - previous.value == self._step_ns
        return bool(label == previous + self.offset)

    def provisional_labels(self, n: int) -> list[pd.Timestamp]:
        """The labels of `provisional()`'s `n` points: the grid up to the newest bucket (the tail is contiguous,
        gaps filled), without building the series."""
        if n == 0 or self.latest is None:
            return []
        return [self.latest - k * self.offset for k in range(n - 1, -1, -1)]

    @property
    def last_label(self) -> pd.Timestamp | None:
        """The label of the newest bucket, final or provisional: where `series()` ends (the newest bucket is
        never final: the lateness horizon lies at or before it)."""
        return self.latest

    def final(self) -> pd.Series:
        """The final points kept (at most `window_points`)."""
        return self._series(pd.Series(self._final.ordered(), index=self._labels(), dtype=float))

    def series(self) -> pd.Series:
        """Final and provisional points on the regular grid: the series as a CSV of these data would give it."""
        final, provisional = self.final(), self.provisional()
        if final.empty or provisional.empty:
            return final if provisional.empty else provisional
        return self._series(pd.concat([final, provisional]))

    def _series(self, values: pd.Series) -> pd.Series:
        values = values.rename(self.name)
        if len(values):
            values.index = pd.DatetimeIndex(values.index, freq=self.offset)
        return values


class _Ring:
    """The last `capacity` numbers of a stream in one numpy array: allocated as it fills (by a quarter again each
    time: at most a fifth unused), then overwritten oldest first."""

    __slots__ = ("capacity", "data", "size", "start")

    def __init__(self, capacity: int, dtype: type[np.generic]) -> None:
        self.capacity, self.data = capacity, np.empty(min(capacity, 16), dtype)
        self.size = self.start = 0  # numbers kept; where the oldest is (0 until the ring is full)

    def __len__(self) -> int:
        return self.size

    def append(self, number: float) -> None:
        size = self.size
        if size == self.capacity:  # full: over the oldest
            self.data[self.start] = number
            self.start = self.start + 1 if self.start + 1 < size else 0
            return
        if size == len(self.data):
            grown = np.empty(min(self.capacity, size + size // 4), self.data.dtype)
            grown[:size] = self.data
            self.data = grown
        self.data[size] = number
        self.size = size + 1

    def ordered(self) -> np.ndarray:
        """The numbers kept, oldest first (a copy)."""
        return np.concatenate((self.data[self.start:self.size], self.data[:self.start]))

    def at(self, i: int) -> float:
        """The `i`-th number kept, oldest first."""
        return self.data[(self.start + i) % self.size]


class _Stamps(_Ring):
    """The timestamps (int64 ns) of the last `capacity` final observations (off the grid), in the order they became
    final, and whether one is among them: a binary search while they are in increasing order (buckets become final
    in order and a bucket's stamps come sorted), else a scan (after a point that broke the grid, until it leaves)."""

    __slots__ = ("added", "unordered_at", "_last_ns")

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, np.int64)
        self.added = 0  # stamps added in all
        self.unordered_at = -1  # the number (0-based) of the last stamp added that was not above the one before
        self._last_ns = 0

    def add(self, stamp: pd.Timestamp) -> None:
        ns = stamp.value
        if self.added and ns <= self._last_ns:
            self.unordered_at = self.added
        self.append(ns)
        self.added, self._last_ns = self.added + 1, ns

    def holds(self, ns: int) -> bool:
        data, start, size = self.data, self.start, self.size
        if self.unordered_at > self.added - size:  # an unordered pair is among those kept
            return bool((data[:size] == ns).any())
        # in order from the oldest: data[start:size], then data[:start] (once the ring is full)
        part = data[:start] if start and ns >= data[0] else data[start:size]
        i = part.searchsorted(ns)  # the method: a µs less than np.searchsorted's dispatch
        return bool(i < len(part) and part[i] == ns)
