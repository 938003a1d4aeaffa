"""Realised accuracy of one live series: every final point (an *actual*) scored against the forecasts made
before it, per horizon step, over the last `accuracy_window` actuals (broker-free; `LiveSeries` drives it).

Which forecasts: after each final point is folded into the model, the forecast of the next `steps` points
from that state (no provisional tail) is recorded (`forecast`), as if a revision had been made at every
point. A later actual at position p is scored against each recorded forecast that covers p, at the step
p - first + 1 (`actual`). So the score depends on the final points only, never on how the service batched
them into revisions: a replay or a restart scores the same. The values are those a revision publishes
(inverse transformation, min/max values and rounding), and the actuals are the final points as the model
sees them (bucket means, gaps filled).

What is kept (bounded memory): the forecasts still covering a future point (at most `steps` of `steps`
values), per step the last `window` (actual, forecast) pairs, and the last `window` + season actuals (the
scale of MASE). `steps` is the horizon capped at `MAX_SCORED_STEPS`.

The rolling `error` pools steps 1..`span` (span = min(test_values, steps)): the validation error a model is
chosen with scores a test_values-long forecast the same way, so the two compare (drift: `over`). Estimators
follow forecasting.metrics (the same formulas; MASE scaled by the seasonal naive MAE of the recent actuals),
and an error is reported as `forecasting.metrics.score` ranks it (AM by its size); undefined (MAPE of a
zero actual) is None.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from forecasting.metrics import METRIC_NAMES

MAX_SCORED_STEPS = 200  # horizon steps scored per series: memory is O(steps × (steps + window))
RESUM_EVERY = 4096  # pairs added between two exact recomputations of the running sums
_TERMS = ("count", "error", "absolute", "square", "ape", "sape")
_CANONICAL = {m.lower(): m for m in METRIC_NAMES}
_ABSOLUTE = (0, 2)  # the running sums MAE and MASE read (indices of _TERMS): the only ones they keep


def estimate(estimator: str, actual: np.ndarray, predicted: np.ndarray, recent: np.ndarray | None = None,
             season: int = 1) -> float | None:
    """`estimator` (a main_accuracy_estimator) of these pairs as forecasting.metrics computes it, ranked as
    `score` does (AM by its size); None when there is no pair or it is undefined. `recent`: the actuals MASE is
    scaled by (their seasonal naive MAE)."""
    if not len(actual):
        return None
    key = _CANONICAL[estimator.lower()]
    errors = actual - predicted
    if key == "MAE":
        value = float(np.mean(np.abs(errors)))
    elif key in ("MSE", "RMSE"):
        mse = float(np.mean(errors**2))
        value = mse if key == "MSE" else math.sqrt(mse)
    elif key == "AM":
        value = abs(float(np.mean(errors)))
    elif key == "SD":
        value = float(np.std(errors, ddof=0))
    elif key == "MAPE":
        value = float(np.mean(np.abs(errors) / np.abs(actual)) * 100) if np.all(actual != 0) else math.nan
    elif key == "sMAPE":
        denom = np.abs(actual) + np.abs(predicted)
        terms = np.where(denom == 0, 0.0, 2 * np.abs(errors) / np.where(denom == 0, 1, denom))
        value = float(np.mean(terms) * 100)
    else:  # MASE
        train = np.asarray(recent if recent is not None else (), dtype=float)
        lag = season if len(train) > season else 1
        scale = float(np.mean(np.abs(train[lag:] - train[:-lag]))) if len(train) > lag else math.nan
        value = float(np.mean(np.abs(errors))) / scale if scale > 0 else math.nan
    return _finite(value)


class Scorer:
    """The realised accuracy of one series' current model (see the module's docstring)."""

    def __init__(self, estimator: str, horizon: int, span: int, window: int, season: int = 1) -> None:
        if window < 1 or horizon < 1:
            raise ValueError("horizon and window must be at least 1")
        self.estimator, self.window, self.season = estimator.lower(), window, max(1, season)
        self.steps = min(horizon, MAX_SCORED_STEPS)
        self.span = max(1, min(span, self.steps))
        self._forecasts: deque[tuple[int, list[float]]] = deque()  # (first position covered, values)
        # MAE, MASE (the usual ones) read the errors only: their rings keep actual - forecast, not the pair (half
        # the memory a revision's summary and every actual's shift go through), and their running sums the count
        # and the absolute errors' only; the other estimators keep the pairs and every sum
        self._absolute_only = _CANONICAL[self.estimator] in ("MAE", "MASE")
        self._pairs = _Rings(self.steps, window, errors_only=self._absolute_only)
        self._recent: deque[float] = deque(maxlen=window + self.season)
        self.scored = 0  # actuals scored by at least one forecast
        self.over = 0  # actuals in a row with the rolling error above the threshold
        # Running sums of the pooled pairs' terms (steps 1..span) for the drift check after every actual: the
        # estimator from these costs O(1), not O(span × window); recomputed from the pairs now and then so that
        # rounding cannot pile up (when depends on the count only: the same on a replay).
        self._sums = [0.0] * len(_TERMS)
        self.uses = _ABSOLUTE if self._absolute_only else tuple(range(len(_TERMS)))  # the sums kept (the rest: 0.0)
        self._zeros = 0  # pooled actuals equal to 0 (MAPE undefined; not counted when only absolute sums are kept)
        self._changes = 0

    def forecast(self, first: int, values: np.ndarray) -> None:
        """The forecast made once the point at position first - 1 was folded in: values for first, first + 1, ..."""
        self._forecasts.append((first, np.asarray(values[: self.steps], dtype=float).tolist()))

    def actual(self, position: int, value: float, threshold: float | None = None) -> bool:
        """Score the final point at `position` against every kept forecast that covers it; then count it towards
        the drift streak against `threshold` (None: no streak). True when some forecast covered it."""
        forecasts = self._forecasts
        while forecasts and forecasts[0][0] + len(forecasts[0][1]) <= position:
            forecasts.popleft()  # it covers no future point any more
        steps: list[int] = []
        predicted: list[float] = []
        for first, values in forecasts:
            step = position - first
            if 0 <= step < len(values):
                steps.append(step)
                predicted.append(values[step])
        if steps:
            self._score(value, steps, predicted)
        if self._changes >= RESUM_EVERY:  # after the pairs took this actual: the sums match them again
            self._changes = 0
            self._resum()
        self._recent.append(value)
        if scored := bool(steps):
            self.scored += 1
            if threshold is not None:
                error = self.error()
                self.over = self.over + 1 if error is not None and error > threshold else 0
        return scored

    def _arrays(self, step: int) -> np.ndarray:
        return self._pairs.ordered(step)

    def _score(self, value: float, steps: list[int], predicted: list[float]) -> None:
        """The pairs (value, predicted[i]) into the windows of `steps` (in the kept forecasts' order), and the
        running sums of steps 1..span updated pair by pair: minus the pair it pushes out of a full window, plus
        itself; each sum `total + sign * term` (`_terms`' terms spelt out: the same operations, the same bits)."""
        leaving = self._pairs.push(steps, value, predicted)
        span = self.span
        if self._absolute_only:
            self._score_absolute(value, steps, predicted, leaving)
            return
        entries: list[tuple[float, float, float]] = []  # (actual, forecast, sign), in the order they count
        for step, forecast, old in zip(steps, predicted, leaving, strict=True):
            if step < span:
                if old is not None:
                    entries.append((old[0], old[1], -1.0))
                entries.append((value, forecast, 1.0))
        count, total, absolute_sum, square, ape, sape = self._sums
        for actual, forecast, sign in entries:
            error = actual - forecast
            absolute = abs(error)
            denom = abs(actual) + abs(forecast)
            count = count + sign * 1.0
            total = total + sign * error
            absolute_sum = absolute_sum + sign * absolute
            square = square + sign * (error * error)
            ape = ape + sign * (absolute / abs(actual) if actual else 0.0)
            sape = sape + sign * (2 * absolute / denom if denom else 0.0)
            if actual == 0:
                self._zeros += int(sign)
        self._sums = [count, total, absolute_sum, square, ape, sape]
        self._changes += len(entries)

    def _score_absolute(self, value: float, steps: list[int], predicted: list[float],
                        leaving: list[tuple[float, float] | None]) -> None:
        """`_score`'s sums for an estimator that reads only the count and the absolute errors' (MAE, MASE; its
        rings keep errors): the same additions in the same order (`count + sign * 1.0`, `total + sign *
        abs(error)`), the others left out."""
        span, changes = self.span, 0
        count, absolute_sum = self._sums[0], self._sums[2]
        for step, forecast, old in zip(steps, predicted, leaving, strict=True):
            if step < span:
                if old is not None:
                    count = count + -1.0
                    absolute_sum = absolute_sum + -1.0 * abs(old[0])  # its error, as computed when it came
                    changes += 1
                count = count + 1.0
                absolute_sum = absolute_sum + 1.0 * abs(value - forecast)
                changes += 1
        self._sums[0], self._sums[2] = count, absolute_sum
        self._changes += changes

    def _resum(self) -> None:
        pooled = [tuple(pair) for step in range(self.span) for pair in self._pairs.ordered(step).tolist()]
        if self._absolute_only:  # errors e: the terms of the pair (e, 0.0) (e - 0.0 is e, to the bit)
            pooled = [(error, 0.0) for (error,) in pooled]
        sums = [math.fsum(column) for column in zip(*(_terms(*pair) for pair in pooled), strict=True)] \
            if pooled else [0.0] * len(_TERMS)
        self._sums = [total if i in self.uses else 0.0 for i, total in enumerate(sums)]
        self._zeros = 0 if self._absolute_only else sum(1 for actual, _ in pooled if actual == 0)

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
        if self._absolute_only:  # errors e: the pairs (e, 0.0) (e - 0.0 is e, to the bit)
            actual, predicted = pairs[:, 0], np.zeros(len(pairs))
        else:
            actual, predicted = pairs[:, 0], pairs[:, 1]
        mae = estimate("mae", actual, predicted)
        if _CANONICAL[self.estimator] == "MAE":
            return {"error": mae, "mae": mae}
        return {"error": estimate(self.estimator, actual, predicted, recent, self.season), "mae": mae}

    def _mae_summary(self, count: int) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
        """`summary`'s steps and pooled figures when the estimator is the MAE and every step has `count` pairs:
        one numpy pass over a (steps, count) table instead of one per step. The same numbers to the bit: a row's
        mean is numpy's pairwise sum of that row over its count, as the mean of the row alone is, and the pooled
        one is of the first `span` rows laid end to end, as their concatenation is. np.mean is spelt out as what it
        does (numpy's `_mean`: the pairwise sum, divided by the count) without its Python-level checks."""
        absolute = np.abs(self._pairs.all_ordered()[:, :, 0])  # the MAE's rings keep the errors
        with np.errstate(all="ignore"):  # a sum past the largest float: inf, as np.mean gives (reported as None)
            means = (np.add.reduce(absolute, axis=1) / count).tolist()
        steps = []
        for s, mean in enumerate(means):
            mae = _finite(mean)
            steps.append({"step": s + 1, "count": count, "error": mae, "mae": mae})
        pooled = float(np.add.reduce(absolute[: self.span].ravel())) / (self.span * count)
        mae = _finite(pooled)
        return steps, {"error": mae, "mae": mae}

    def _mae_filling_summary(self) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
        """`summary`'s steps and pooled figures when the estimator is the MAE and some step's window is not full
        yet (a series' first `window` points or so). A step's errors end its row of the table, so its MAE is the
        pairwise sum of that slice of one |table| over its count, and the pooled one that of the first `span`
        slices laid end to end: the same numbers to the bit as np.mean of each step's errors alone (the same
        values in the same order, summed by the same numpy reduction), without copying each step's errors and its
        zero forecasts first (about thirty numpy calls fewer a revision while the windows fill)."""
        window, count = self.window, self._pairs.count
        absolute = np.abs(self._pairs.table[:, :, 0])  # the MAE's rings keep the errors
        rows = [absolute[s, window - count(s):] for s in range(self.steps)]
        steps = []
        with np.errstate(all="ignore"):  # a sum past the largest float: inf, as np.mean gives (reported as None)
            for s, row in enumerate(rows):
                mae = _finite(float(np.add.reduce(row)) / len(row)) if len(row) else None
                steps.append({"step": s + 1, "count": len(row), "error": mae, "mae": mae})
            pooled = np.concatenate(rows[: self.span])
            mae = _finite(float(np.add.reduce(pooled)) / len(pooled)) if len(pooled) else None
        return steps, {"error": mae, "mae": mae}

    def summary(self, validation_error: float | None, factor: float) -> dict[str, Any]:
        """A `RollingAccuracy` record (schemas.records.RollingAccuracyRecord) of the current state."""
        if self._pairs.full() and _CANONICAL[self.estimator] == "MAE":
            steps, pooled = self._mae_summary(self.window)  # the usual case once the window is full
        elif _CANONICAL[self.estimator] == "MAE":
            steps, pooled = self._mae_filling_summary()
        else:
            recent = np.asarray(self._recent)
            arrays = [self._arrays(s) for s in range(self.steps)]
            steps = [{"step": s + 1, "count": len(a), **self._error_and_mae(a, recent)}
                     for s, a in enumerate(arrays)]
            pooled = self._error_and_mae(np.concatenate(arrays[: self.span]), recent)
        return {"estimator": self.estimator, "window": self.window, "scored": self.scored,
                "error": pooled["error"], "mae": pooled["mae"], "validation_error": validation_error,
                "threshold": threshold(validation_error, factor), "over": self.over, "steps": steps}


class _Rings:
    """Per horizon step, the last `window` (actual, forecast) pairs: one (steps, window, 2) numpy table whose
    rows end with their step's pairs, oldest first (a pair enters at the end, shifting the row left), so a
    revision's summary reads the full table as it stands, without reordering or converting Python objects.
    `errors_only`: each pair kept as its error, actual - forecast (Python's subtraction: the same bits as
    numpy's), in a (steps, window, 1) table; what `push` returns and the rows hold are then 1-tuples."""

    def __init__(self, steps: int, window: int, errors_only: bool = False) -> None:
        self.window, self.errors_only = window, errors_only
        self.table = np.zeros((steps, window, 1 if errors_only else 2))
        self.added = [0] * steps  # pairs appended to each step in all
        self._full = False

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, step: int) -> list[tuple[float, ...]]:
        """Step `step`'s pairs (or errors), oldest first."""
        return [tuple(pair) for pair in self.ordered(step).tolist()]

    def __iter__(self) -> Iterator[list[tuple[float, ...]]]:
        return (self[step] for step in range(len(self)))

    def count(self, step: int) -> int:
        return int(min(self.added[step], self.window))

    def push(self, steps: list[int], value: float, predicted: list[float]) -> list[tuple[float, ...] | None]:
        """The pairs (value, predicted[i]) appended to steps[i], in that order; per pair, the one it pushed out of
        its step's window (None: the window was not full). Steps k-1, ..., 0 (what every actual brings once the
        forecasts cover it) in one shift of those rows."""
        table, added, window, k = self.table, self.added, self.window, len(steps)
        first = steps[0]
        if k > 1 and first - k + 1 >= 0 and steps == list(range(first, first - k, -1)):
            rows = table[first - k + 1: first + 1]
            oldest = rows[:, 0].tolist()  # step order
            rows[:, :-1] = rows[:, 1:]
            if self.errors_only:
                rows[:, -1, 0] = [value - forecast for forecast in reversed(predicted)]
            else:
                rows[:, -1, 0] = value
                rows[:, -1, 1] = predicted[::-1]
            out: list[tuple[float, ...] | None] = []
            for step in steps:
                pair = oldest[step - first + k - 1]
                out.append(tuple(pair) if added[step] >= window else None)
                added[step] += 1
            return out
        out = []
        for step, forecast in zip(steps, predicted, strict=True):  # one at a time (a step twice: in order)
            row = table[step]
            old = tuple(row[0].tolist())
            out.append(old if added[step] >= window else None)
            row[:-1] = row[1:]
            row[-1] = (value - forecast,) if self.errors_only else (value, forecast)
            added[step] += 1
        return out

    def ordered(self, step: int) -> np.ndarray:
        """(count, 2) (errors only: (count, 1)): the step's pairs, oldest first."""
        return self.table[step, self.window - self.count(step):].copy()

    def full(self) -> bool:
        if not self._full:  # once full, always: pairs are only added
            self._full = min(self.added) >= self.window
        return self._full

    def all_ordered(self) -> np.ndarray:
        """(steps, window, 2) (errors only: 1): every step's pairs, oldest first; only when every step's window is
        full (the table itself: not to be written to)."""
        return self.table


def _terms(actual: float, predicted: float) -> tuple[float, ...]:
    """One pair's share of each running sum (`_TERMS`)."""
    error = actual - predicted
    denom = abs(actual) + abs(predicted)
    return (1.0, error, abs(error), error * error, abs(error) / abs(actual) if actual else 0.0,
            2 * abs(error) / denom if denom else 0.0)


def _finite(value: float) -> float | None:
    """`value`, or None when it is NaN or infinite (as `estimate` reports them)."""
    return None if math.isnan(value) or math.isinf(value) else value


def threshold(validation_error: float | None, factor: float) -> float | None:
    """Above this rolling error an actual counts towards drift; None when the validation error is unknown."""
    return None if validation_error is None else factor * validation_error
