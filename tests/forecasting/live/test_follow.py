"""A live series from its first observation to its revisions (forecasting.live.follow), broker-free: the
snapshot is taken at the observation that reaches min_points, the fit is the core's final refit, revisions
are numbered by the observations folded in and equal a from-scratch forecast on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.live.follow import Choice, LiveSeries, _iso, fit_live, refit_live
from forecasting.live.models.refit import REFIT_EVERY
from forecasting.live.observations import Observation
from forecasting.live.params import live_request
from tests.plugins.core_series import make_config


def _series(min_points: int = 20, transformation: str = "none", models: str = "naive") -> tuple[LiveSeries, str]:
    config = make_config(input_parameters={"source_topic": "t", "frequency": "D",
                                           "live_parameters": {"min_points": min_points}},
                         model_parameters={"models": models, "possible_transformations": transformation})
    live = live_request(config)
    assert live is not None
    return LiveSeries("sales", config, live.live, "D"), config.to_json()


def _obs(day: int, value: float) -> Observation:
    return Observation("sales", pd.Timestamp("2026-01-01") + pd.Timedelta(days=day), value)


def test_ready_at_the_observation_that_reaches_min_points() -> None:
    series, _ = _series(min_points=5)
    ready = [series.add(_obs(d, float(d)))[1] for d in range(8)]
    # lateness 0: a day becomes final when the next one arrives, so the 5th final point comes with day 5
    assert ready == [False] * 5 + [True, False, False]
    assert series.snapshot is not None and list(series.snapshot) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert series.waiting_for == 0


def test_revisions_grow_with_the_observations_and_match_a_fresh_naive_forecast() -> None:
    series, config_json = _series(min_points=10)
    for d in range(12):
        series.add(_obs(d, 10.0 + d))
    assert series.revise() is None  # no model yet
    choice = Choice("naive", "none", 0, {})
    assert series.snapshot is not None
    series.start(choice, fit_live(config_json, series.snapshot, choice))
    first = series.revise()
    assert first is not None and first["revision"] == 12 and first["points"] == 12
    assert first["last_timestamp"] == "2026-01-12T00:00:00"
    # naive: the last value (the provisional day 11 counts), for 4 steps after it
    assert first["forecast"]["yhat"] == [21.0] * 4
    assert first["forecast"]["timestamps"][0] == "2026-01-13T00:00:00.000000"  # as forecasting.series writes them
    assert series.revise() is None  # nothing new
    series.add(_obs(12, 30.0))
    series.add(_obs(13, 31.0))
    second = series.revise()
    assert second is not None and second["revision"] == 14 and second["points"] == 2
    assert second["forecast"]["yhat"] == [31.0] * 4 and second["last_timestamp"] == "2026-01-14T00:00:00"
    lo, hi = np.array(second["forecast"]["lower_95"]), np.array(second["forecast"]["upper_95"])
    assert np.all(lo < 31.0) and np.all(hi > 31.0)


def test_a_revision_carries_the_points_since_the_previous_one_then_its_provisional_tail() -> None:
    series, config_json = _series(min_points=10)
    for d in range(12):
        series.add(_obs(d, 10.0 + d))
    choice = Choice("naive", "none", 0, {})
    assert series.snapshot is not None
    series.start(choice, fit_live(config_json, series.snapshot, choice))
    first = series.revise()  # days 0-9 are the selection's history; day 10 final since, day 11 provisional
    assert first is not None
    assert first["actual_timestamps"] == ["2026-01-11T00:00:00", "2026-01-12T00:00:00"]
    assert first["actual_values"] == [20.0, 21.0]
    series.add(_obs(12, 30.0))
    series.add(_obs(13, 31.0))
    second = series.revise()
    assert second is not None  # day 11 final now (restated), day 12 final, day 13 provisional
    assert second["actual_timestamps"] == [f"2026-01-{d}T00:00:00" for d in (12, 13, 14)]
    assert second["actual_values"] == [21.0, 30.0, 31.0]


def test_a_transformation_is_applied_and_inverted() -> None:
    series, config_json = _series(min_points=10, transformation="log")
    for d in range(11):
        series.add(_obs(d, float(2 ** (d % 4 + 1))))
    choice = Choice("naive", "log", 0, {})
    assert series.snapshot is not None
    series.start(choice, fit_live(config_json, series.snapshot, choice))
    got = series.revise()
    assert got is not None and np.allclose(got["forecast"]["yhat"], [float(2 ** (10 % 4 + 1))] * 4)


def test_a_refit_kind_is_revised_from_the_pools_answer_as_from_a_fit_in_place() -> None:
    """The live service's split: `fold` (cheap), `refit_work` for the pool (`refit_live`, here called directly),
    `refitted`, then `revise` — the same revisions as a series that fits in place."""
    pooled, config_json = _series(min_points=30, models="fbprophet")
    in_place, _ = _series(min_points=30, models="fbprophet")
    values = [10.0 + 3 * np.sin(d / 2) + 0.1 * d for d in range(31 + REFIT_EVERY)]
    for d in range(31):
        pooled.add(_obs(d, values[d]))
        in_place.add(_obs(d, values[d]))
    choice = Choice("fbprophet", "none", 0, {})
    assert pooled.snapshot is not None
    fitted = fit_live(config_json, pooled.snapshot, choice)
    assert fitted.ahead is not None  # the first fit brings its forecasts: no refit to start with
    pooled.start(choice, fitted)
    in_place.start(choice, fitted)
    pooled.fold()
    assert pooled.refit_work() is None
    assert pooled.revise() == in_place.revise()
    for d in range(31, 31 + REFIT_EVERY):
        pooled.add(_obs(d, values[d]))
        in_place.add(_obs(d, values[d]))
    pooled.fold()
    work = pooled.refit_work()
    assert work is not None  # REFIT_EVERY points folded in since the fit
    assert pooled.refitted(refit_live(work)) and pooled.refit_work() is None
    got, expected = pooled.revise(), in_place.revise()
    assert got is not None and expected is not None and got["revision"] == 31 + REFIT_EVERY
    assert got["forecast"]["yhat"] == expected["forecast"]["yhat"]  # the same fit
    # prophet samples its intervals (seeded): a slice of the pool's longer horizon draws other samples than the
    # in-place fit's short one, so they agree within the sampling noise, not to the bit.
    for bound in ("lower_80", "upper_80", "lower_95", "upper_95"):
        width = np.array(expected["forecast"]["upper_95"]) - np.array(expected["forecast"]["lower_95"])
        assert np.all(np.abs(np.array(got["forecast"][bound]) - np.array(expected["forecast"][bound])) < 0.2 * width)


def test_the_remembered_iso_texts_are_each_stamps_own() -> None:
    # One instant in two zones (equal Timestamps, one hash) and in two units: each its own text, as isoformat.
    utc = pd.Timestamp("2026-03-29 01:30", tz="UTC")
    for stamp in (utc, utc.tz_convert("Europe/Rome"), utc.tz_localize(None), utc.tz_localize(None).as_unit("s"),
                  pd.Timestamp("2026-03-29 01:30:00.000001")):
        assert _iso(stamp) == stamp.isoformat()
        assert _iso(stamp) == stamp.isoformat()  # remembered
