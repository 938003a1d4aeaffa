"""The scorer's faster paths (pairs pushed a block of steps at a time, the running sums updated in one loop, the
MAE summary over the ordered table) give what the scorer before them gave (tests/forecasting/live/
reference_scorer.py), to the bit: on random streams of every estimator, horizon, span, window and season, with
zeros, repeated values, forecasts left out or cut short, two forecasts from one position, and past the
periodic recomputation of the running sums."""

from __future__ import annotations

import random
import struct
from typing import Any

import numpy as np
import pytest

from forecasting.live.accuracy import RESUM_EVERY, Scorer
from forecasting.metrics import METRIC_NAMES
from tests.forecasting.live.reference_scorer import Scorer as ReferenceScorer


def _bits(value: Any) -> Any:
    """Floats as their bits (-0.0 is not 0.0, nan equals nan), recursively."""
    if isinstance(value, float):
        return struct.pack("<d", value)
    if isinstance(value, dict):
        return {k: _bits(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_bits(v) for v in value]
    return value


def _state(scorer: Any, ours: Scorer) -> Any:
    """The scorer's state as `ours` keeps it: of the running sums, those its estimator reads; of the pairs, their
    errors (actual - forecast) where it keeps those only (MAE, MASE)."""
    pairs = [scorer._pairs[s] for s in range(scorer.steps)]
    if ours._pairs.errors_only and scorer._pairs is not ours._pairs:
        pairs = [[(actual - forecast,) for actual, forecast in step] for step in pairs]
    return _bits(([scorer._sums[i] for i in ours.uses], scorer._zeros if 4 in ours.uses else None, scorer._changes,
                  scorer.scored, scorer.over, scorer.error(), pairs))


def _value(rng: random.Random) -> float:
    return rng.choice((0.0, -0.0, 1.0, 3.5, rng.uniform(-100, 100), rng.uniform(-1e-3, 1e-3), rng.gauss(50, 5),
                       float(rng.randint(-3, 3))))


@pytest.mark.parametrize("seed", range(12))
def test_the_scorer_scores_to_the_bit_as_the_reference(seed: int) -> None:
    _compare(random.Random(seed))


@pytest.mark.parametrize("estimator", ["mae", "mase"])
@pytest.mark.parametrize("seed", range(6))
def test_the_errors_only_rings_of_mae_and_mase_score_to_the_bit_as_the_reference(seed: int, estimator: str) -> None:
    """MAE and MASE keep the errors, not the pairs, and two running sums: every shape, full windows included."""
    _compare(random.Random(100 + seed), estimator)


def _compare(rng: random.Random, estimator: str | None = None) -> None:
    """Ours and the reference on one random stream (of `estimator`, else a random one), to the bit."""
    estimator = rng.choice(METRIC_NAMES).lower() if estimator is None else estimator
    horizon, window = rng.choice((1, 2, 7, 12)), rng.choice((1, 3, 50))
    span, season = rng.randint(1, horizon + 2), rng.choice((1, 7))
    ours, theirs = Scorer(estimator, horizon, span, window, season), ReferenceScorer(estimator, horizon, span, window,
                                                                                    season)
    for i in range(400):
        position = i  # the last point folded
        kind = rng.random()
        if kind < 0.8:  # a full forecast, as LiveSeries records after each point
            values = np.array([_value(rng) for _ in range(horizon)])
        elif kind < 0.9:  # shorter than the horizon
            values = np.array([_value(rng) for _ in range(rng.randint(1, horizon))])
        else:
            values = None  # none recorded from this point (a refit kind without its due fit)
        if values is not None:
            ours.forecast(position + 1, values)
            theirs.forecast(position + 1, values)
            if rng.random() < 0.05:  # a second one from the same position
                again = np.array([_value(rng) for _ in range(horizon)])
                ours.forecast(position + 1, again)
                theirs.forecast(position + 1, again)
        position = i + 1
        value, limit = _value(rng), rng.choice((None, 0.5, 20.0))
        assert ours.actual(position, value, limit) == theirs.actual(position, value, limit)
        assert _state(ours, ours) == _state(theirs, ours), f"after actual {i}"
        if i % 7 == 0 or i > 380:
            assert _bits(ours.summary(1.0, 1.5)) == _bits(theirs.summary(1.0, 1.5)), f"summary after actual {i}"


def test_the_mae_summary_of_full_windows_and_the_resummed_sums_are_the_references() -> None:
    """The usual case (MAE, every window full) over enough actuals for several recomputations of the sums."""
    rng = np.random.default_rng(5)
    ours, theirs = Scorer("mae", 7, 7, 50, 7), ReferenceScorer("mae", 7, 7, 50, 7)
    actuals = 3 * RESUM_EVERY // 14 + 20  # 14 changes an actual: three recomputations
    for position in range(1, actuals):
        values = rng.normal(100, 30, 7).round(rng.integers(0, 3))
        value = float(rng.normal(100, 30))
        for scorer in (ours, theirs):
            scorer.actual(position, value, 50.0)
            scorer.forecast(position + 1, values)
        if position > 60 and position % 25 == 0:
            assert _bits(ours.summary(10.0, 1.5)) == _bits(theirs.summary(10.0, 1.5))
            assert ours._pairs.full()
    assert _state(ours, ours) == _state(theirs, ours)
