"""The scorer as it was before its speed-ups (forecasting/live/accuracy.py at 3d8cc00, Scorer and its rings,
unchanged but for this docstring and the imports): the reference tests/forecasting/live/test_scoring_paths.py
compares the current one with, to the bit."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from forecasting.live.accuracy import _CANONICAL, _TERMS, MAX_SCORED_STEPS, RESUM_EVERY, estimate, threshold


class Scorer:
    """The realised accuracy of one series' current model (see the module's docstring)."""

    def __init__(self, estimator: str, horizon: int, span: int, window: int, season: int = 1) -> None:
        if window < 1 or horizon < 1:
            raise ValueError("horizon and window must be at least 1")
        self.estimator, self.window, self.season = estimator.lower(), window, max(1, season)
        self.steps = min(horizon, MAX_SCORED_STEPS)
        self.span = max(1, min(span, self.steps))
        self._forecasts: deque[tuple[int, np.ndarray]] = deque()  # (first position covered, values)
        self._pairs = _Rings(self.steps, window)
        self._recent: deque[float] = deque(maxlen=window + self.season)
        self.scored = 0  # actuals scored by at least one forecast
        self.over = 0  # actuals in a row with the rolling error above the threshold
        # Running sums of the pooled pairs' terms (steps 1..span) for the drift check after every actual: the
        # estimator from these costs O(1), not O(span × window); recomputed from the pairs now and then so that
        # rounding cannot pile up (when depends on the count only: the same on a replay).
        self._sums = [0.0] * len(_TERMS)
        self._zeros = 0  # pooled actuals equal to 0 (MAPE undefined)
        self._changes = 0

    def forecast(self, first: int, values: np.ndarray) -> None:
        """The forecast made once the point at position first - 1 was folded in: values for first, first + 1, ..."""
        self._forecasts.append((first, np.asarray(values[: self.steps], dtype=float)))

    def actual(self, position: int, value: float, threshold: float | None = None) -> bool:
        """Score the final point at `position` against every kept forecast that covers it; then count it towards
        the drift streak against `threshold` (None: no streak). True when some forecast covered it."""
        forecasts = self._forecasts
        while forecasts and forecasts[0][0] + len(forecasts[0][1]) <= position:
            forecasts.popleft()  # it covers no future point any more
        scored = False
        for first, values in forecasts:
            step = position - first
            if 0 <= step < len(values):
                pair = (value, float(values[step]))
                if step < self.span:
                    if (oldest := self._pairs.oldest(step)) is not None:  # it leaves the window
                        self._add(oldest, -1.0)
                    self._add(pair, 1.0)
                self._pairs.append(step, pair)
                scored = True
        if self._changes >= RESUM_EVERY:  # after the pairs took this actual: the sums match them again
            self._changes = 0
            self._resum()
        self._recent.append(value)
        if scored:
            self.scored += 1
            if threshold is not None:
                error = self.error()
                self.over = self.over + 1 if error is not None and error > threshold else 0
        return scored

    def _arrays(self, step: int) -> np.ndarray:
        return self._pairs.ordered(step)

    def _add(self, pair: tuple[float, float], sign: float) -> None:
        # `_terms` spelt out, each sum `total + sign * term` as there (the same operations: the same bits), without
        # a tuple and a list per call: this runs twice per step per actual.
        actual, predicted = pair
        error = actual - predicted
        absolute = abs(error)
        denom = abs(actual) + abs(predicted)
        sums = self._sums
        sums[0] = sums[0] + sign * 1.0
        sums[1] = sums[1] + sign * error
        sums[2] = sums[2] + sign * absolute
        sums[3] = sums[3] + sign * (error * error)
        sums[4] = sums[4] + sign * (absolute / abs(actual) if actual else 0.0)
        sums[5] = sums[5] + sign * (2 * absolute / denom if denom else 0.0)
        if actual == 0:
            self._zeros += int(sign)
        self._changes += 1

    def _resum(self) -> None:
        pooled = [tuple(pair) for step in range(self.span) for pair in self._pairs.ordered(step).tolist()]
        self._sums = [math.fsum(column) for column in zip(*(_terms(*pair) for pair in pooled), strict=True)] \
            if pooled else [0.0] * len(_TERMS)
        self._zeros = sum(1 for actual, _ in pooled if actual == 0)

    def error(self) -> float | None:
        """The rolling main-estimator error over steps 1..span pooled, from the running sums."""
        count, total, absolute, square, ape, sape = self._sums
        if count < 0.5:
            return None
        key = _CANONICAL[self.estimator]
        mae = absolute / count
        if key == "MAE":
            return mae
        if key in ("MSE", "RMSE"):
            return square / count if key == "MSE" else math.sqrt(max(square / count, 0.0))
        if key == "AM":
            return abs(total / count)
        if key == "SD":
            return math.sqrt(max(square / count - (total / count) ** 2, 0.0))
        if key == "MAPE":
            return None if self._zeros else ape / count * 100
        if key == "sMAPE":
            return sape / count * 100
        recent = np.asarray(self._recent)  # MASE
        lag = self.season if len(recent) > self.season else 1
        scale = float(np.mean(np.abs(recent[lag:] - recent[:-lag]))) if len(recent) > lag else math.nan
        return mae / scale if scale > 0 else None

    def _error_and_mae(self, pairs: np.ndarray, recent: np.ndarray) -> dict[str, float | None]:
        """The estimator's error and the MAE of these (actual, forecast) pairs; one computation when the
        estimator is the MAE (a revision asks for both per step: half its scoring cost)."""
        mae = estimate("mae", pairs[:, 0], pairs[:, 1])
        if _CANONICAL[self.estimator] == "MAE":
            return {"error": mae, "mae": mae}
        return {"error": estimate(self.estimator, pairs[:, 0], pairs[:, 1], recent, self.season), "mae": mae}

    def _mae_summary(self, count: int) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
        """`summary`'s steps and pooled figures when the estimator is the MAE and every step has `count` pairs:
        one numpy pass over a (steps, count) table instead of one per step. The same numbers to the bit: a row's
        mean is numpy's pairwise sum of that row over its count, as the mean of the row alone is, and the pooled
        one is of the first `span` rows laid end to end, as their concatenation is."""
        table = self._pairs.all_ordered()
        absolute = np.abs(table[:, :, 0] - table[:, :, 1])
        means = np.mean(absolute, axis=1).tolist()
        steps = []
        for s, mean in enumerate(means):
            mae = None if math.isnan(mean) or math.isinf(mean) else mean
            steps.append({"step": s + 1, "count": count, "error": mae, "mae": mae})
        pooled = float(np.mean(absolute[: self.span].ravel()))
        mae = None if math.isnan(pooled) or math.isinf(pooled) else pooled
        return steps, {"error": mae, "mae": mae}

    def summary(self, validation_error: float | None, factor: float) -> dict[str, Any]:
        """A `RollingAccuracy` record (schemas.records.RollingAccuracyRecord) of the current state."""
        recent = np.asarray(self._recent)
        if self._pairs.full() and _CANONICAL[self.estimator] == "MAE":
            steps, pooled = self._mae_summary(self.window)  # the usual case once the window is full
        else:
            arrays = [self._arrays(s) for s in range(self.steps)]
            steps = [{"step": s + 1, "count": len(a), **self._error_and_mae(a, recent)}
                     for s, a in enumerate(arrays)]
            pooled = self._error_and_mae(np.concatenate(arrays[: self.span]), recent)
        return {"estimator": self.estimator, "window": self.window, "scored": self.scored,
                "error": pooled["error"], "mae": pooled["mae"], "validation_error": validation_error,
                "threshold": threshold(validation_error, factor), "over": self.over, "steps": steps}


class _Rings:
    """Per horizon step, the last `window` (actual, forecast) pairs: one (steps, window, 2) numpy table whose
    rows are rings (a revision's summary reads them as arrays, without converting Python objects each time)."""

    def __init__(self, steps: int, window: int) -> None:
        self.window = window
        self.table = np.zeros((steps, window, 2))
        self.added = np.zeros(steps, dtype=np.int64)  # pairs appended to each step in all

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, step: int) -> list[tuple[float, float]]:
        """Step `step`'s pairs, oldest first."""
        return [(a, f) for a, f in self.ordered(step).tolist()]

    def __iter__(self) -> Iterator[list[tuple[float, float]]]:
        return (self[step] for step in range(len(self)))

    def count(self, step: int) -> int:
        return int(min(self.added[step], self.window))

    def oldest(self, step: int) -> tuple[float, float] | None:
        """The pair the next `append` to `step` pushes out (None while the window is not full)."""
        added = int(self.added[step])
        if added < self.window:
            return None
        actual, forecast = self.table[step, added % self.window].tolist()
        return actual, forecast

    def append(self, step: int, pair: tuple[float, float]) -> None:
        added = int(self.added[step])
        self.table[step, added % self.window] = pair
        self.added[step] = added + 1

    def ordered(self, step: int) -> np.ndarray:
        """(count, 2): the step's pairs, oldest first."""
        added = int(self.added[step])
        if added <= self.window:
            return self.table[step, :added].copy()
        start = added % self.window
        return np.concatenate((self.table[step, start:], self.table[step, :start]))

    def full(self) -> bool:
        return bool(np.all(self.added >= self.window))

    def all_ordered(self) -> np.ndarray:
        """(steps, window, 2): every step's pairs, oldest first; only when every step's window is full."""
        index = (self.added[:, None] + np.arange(self.window)) % self.window
        return self.table[np.arange(len(self.table))[:, None], index]


def _terms(actual: float, predicted: float) -> tuple[float, ...]:
    """One pair's share of each running sum (`_TERMS`)."""
    error = actual - predicted
    denom = abs(actual) + abs(predicted)
    return (1.0, error, abs(error), error * error, abs(error) / abs(actual) if actual else 0.0,
            2 * abs(error) / denom if denom else 0.0)
