"""A revision's forecast after its one provisional point leaves the model after that point behind, and the fold
that makes the point final takes that model and its mean instead of updating and forecasting again
(`LiveSeries._forecast`). Shortcut or not, every revision must be the same, to the bit: checked for each model
kind with a transformation, with points that stay as they were and points whose bucket changes before it is
final (an average of two observations), in batches of one and several points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.live.follow import Choice, LiveSeries, fit_live
from forecasting.live.observations import Observation
from forecasting.live.params import live_request
from forecasting.models.base import LEVELS
from tests.plugins.core_series import make_config


def _plain(self: LiveSeries, h: int, tail: np.ndarray):  # type: ignore[no-untyped-def]
    """The forecast without keeping the model after the tail (what `_forecast` replaced)."""
    assert self.model is not None
    return self.model.forecast(h, LEVELS, tail=tail)


def _revisions(model: str, transformation: str) -> list[dict]:
    config = make_config(input_parameters={"source_topic": "t", "frequency": "D",
                                           "live_parameters": {"min_points": 40}},
                         model_parameters={"models": model, "possible_transformations": transformation,
                                           "prediction_lags": 5, "test_values": 3})
    live = live_request(config)
    assert live is not None
    series = LiveSeries("sales", config, live.live, "D")
    rng = np.random.default_rng(4)
    day = 0
    later: list[Observation] = []

    def add(n: int) -> None:
        nonlocal day
        for obs in later:  # after the revision that forecast from its bucket: the provisional point changes
            series.add(obs)
        later.clear()
        for _ in range(n):
            stamp = pd.Timestamp("2026-01-01") + pd.Timedelta(days=day)
            value = 50 + 5 * np.sin(day * 2 * np.pi / 7) + 0.1 * day + rng.normal(0, 1)
            series.add(Observation("sales", stamp, float(value)))
            if day % 5 == 3:  # a second observation in the same bucket, in the next batch
                later.append(Observation("sales", stamp + pd.Timedelta(hours=6), float(value + 2)))
            day += 1

    add(41)
    assert series.snapshot is not None
    choice = Choice(model, transformation, 0, {}, validation_error=1e9)  # no drift: a re-selection pauses revisions
    series.start(choice, fit_live(config.to_json(), series.snapshot, choice))
    out = []
    for batch in [1] * 12 + [3, 1, 2, 1, 1, 4] + [1] * 8:
        add(batch)
        revision = series.revise()
        assert revision is not None
        out.append(revision)
    return out


@pytest.mark.parametrize("model", ["naive", "seasonal_naive", "autoets", "arima", "theta"])
def test_the_kept_model_after_the_provisional_point_gives_the_same_revisions(model: str,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    transformation = "log"
    with_shortcut = _revisions(model, transformation)
    monkeypatch.setattr(LiveSeries, "_forecast", _plain)
    without = _revisions(model, transformation)
    assert len(with_shortcut) == len(without) == 26
    for a, b in zip(with_shortcut, without, strict=True):
        assert a == b  # the floats too: == on floats that are equal to the bit (no -0.0 nor NaN here)
        assert a["accuracy"]["scored"] > 0  # the scorer's recorded forecasts (the reused means) were scored
