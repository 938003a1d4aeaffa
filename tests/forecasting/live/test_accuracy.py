"""Realised accuracy (forecasting.live.accuracy) and re-selection (forecasting.live.reselect), broker-free: the
scorer alone, then a LiveSeries whose actuals equal or miss its forecasts by known amounts, the same scores
whatever the batching, a drift that triggers a re-selection, and the outcomes (keep, switch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecasting.live.accuracy import MAX_SCORED_STEPS, Scorer, estimate
from forecasting.live.follow import Choice, LiveSeries, fit_live
from forecasting.live.observations import Observation
from forecasting.live.params import live_request
from forecasting.live.reselect import DRIFT, SCHEDULE, Decision, answer_of, decide, due
from forecasting.metrics import compute_metrics, score
from tests.plugins.core_series import make_config

# --- the scorer --------------------------------------------------------------------------------------------


def test_actuals_equal_to_an_earlier_forecast_score_zero_at_those_steps() -> None:
    scorer = Scorer("mae", horizon=3, span=3, window=10)
    scorer.forecast(1, np.array([5.0, 6.0, 7.0]))  # made after point 0: for points 1, 2, 3
    for position, value in ((1, 5.0), (2, 6.0), (3, 7.0)):
        assert scorer.actual(position, value)
    summary = scorer.summary(validation_error=1.0, factor=1.5)
    assert [(s["step"], s["count"], s["error"], s["mae"]) for s in summary["steps"]] == [
        (1, 1, 0.0, 0.0), (2, 1, 0.0, 0.0), (3, 1, 0.0, 0.0)]
    assert summary["error"] == 0.0 and summary["scored"] == 3 and summary["threshold"] == 1.5


def test_actuals_shifted_by_a_known_amount_score_exactly_that_mae() -> None:
    scorer = Scorer("rmse", horizon=2, span=2, window=50)
    for position in range(1, 40):
        scorer.forecast(position, np.array([10.0 * position, 10.0 * (position + 1)]))
        scorer.actual(position, 10.0 * position + 2.5)  # every forecast of this point missed it by 2.5
    summary = scorer.summary(None, 1.5)
    assert summary["mae"] == 2.5 and summary["error"] == 2.5  # rmse of a constant miss is the miss
    assert all(s["mae"] == 2.5 for s in summary["steps"])
    assert summary["threshold"] is None and summary["validation_error"] is None


def test_memory_is_bounded_by_the_horizon_and_the_window() -> None:
    scorer = Scorer("mae", horizon=MAX_SCORED_STEPS + 50, span=5, window=7)
    assert scorer.steps == MAX_SCORED_STEPS
    for position in range(1, 1000):
        scorer.forecast(position, np.zeros(MAX_SCORED_STEPS + 50))
        scorer.actual(position, 1.0)
    assert len(scorer._forecasts) <= scorer.steps
    assert all(len(pairs) <= 7 for pairs in scorer._pairs)
    assert all(len(values) == scorer.steps for _, values in scorer._forecasts)


def test_the_drift_streak_counts_actuals_in_a_row_above_the_threshold() -> None:
    scorer = Scorer("mae", horizon=1, span=1, window=1)
    streak = []
    for position, miss in enumerate((0.0, 3.0, 3.0, 0.0, 3.0, 3.0, 3.0), start=1):
        scorer.forecast(position, np.array([0.0]))
        scorer.actual(position, miss, threshold=2.0)
        streak.append(scorer.over)
    assert streak == [0, 1, 2, 0, 1, 2, 3]


@pytest.mark.parametrize("estimator", ["mae", "mse", "rmse", "am", "sd", "mape", "smape", "mase"])
def test_estimates_are_the_validation_metrics(estimator: str) -> None:
    rng = np.random.default_rng(3)
    actual, predicted, recent = rng.normal(50, 5, 30), rng.normal(50, 5, 30), rng.normal(50, 5, 40)
    expected = score(compute_metrics(actual, predicted, recent, season_length=7), estimator)
    assert estimate(estimator, actual, predicted, recent, season=7) == pytest.approx(expected, rel=1e-12)
    assert estimate(estimator, np.empty(0), np.empty(0)) is None
    if estimator == "mape":
        assert estimate("mape", np.array([0.0, 1.0]), np.array([1.0, 1.0])) is None  # undefined with a zero


# --- a live series ------------------------------------------------------------------------------------------

def _series(patience: int = 0, every: int = 0, min_points: int = 10, horizon: int = 3) -> tuple[LiveSeries, str]:
    config = make_config(input_parameters={"source_topic": "t", "frequency": "D", "live_parameters": {
                             "min_points": min_points, "accuracy_window": 20, "reselect_patience": patience,
                             "reselect_every": every}},
                         model_parameters={"models": "naive", "possible_transformations": "none",
                                           "main_accuracy_estimator": "mae", "test_values": 3,
                                           "prediction_lags": horizon})
    live = live_request(config)
    assert live is not None
    return LiveSeries("sales", config, live.live, "D"), config.to_json()


def _obs(day: int, value: float) -> Observation:
    return Observation("sales", pd.Timestamp("2026-01-01") + pd.Timedelta(days=day), value)


def _started(series: LiveSeries, config_json: str, values: list[float], error: float | None = 1.0) -> None:
    for day, value in enumerate(values):
        series.add(_obs(day, value))
    assert series.snapshot is not None
    choice = Choice("naive", "none", 0, {}, validation_error=error)
    series.start(choice, fit_live(config_json, series.snapshot, choice))


def test_a_naive_model_on_a_trend_misses_each_step_by_the_slope_times_the_step() -> None:
    series, config_json = _series(horizon=3)
    _started(series, config_json, [2.0 * d for d in range(11)])
    for day in range(11, 40):
        series.add(_obs(day, 2.0 * day))
    revision = series.revise()
    assert revision is not None
    accuracy = revision["accuracy"]
    assert [(s["step"], s["mae"]) for s in accuracy["steps"]] == [(1, 2.0), (2, 4.0), (3, 6.0)]
    assert accuracy["mae"] == 4.0 and accuracy["estimator"] == "mae" and accuracy["window"] == 20
    assert accuracy["steps"][0]["count"] == 20  # the window: the last 20 actuals of step 1
    assert revision["selected_at"] == 11 and revision["switched"] is None


def test_a_constant_series_scores_zero() -> None:
    series, config_json = _series()
    _started(series, config_json, [7.0] * 11)
    for day in range(11, 20):
        series.add(_obs(day, 7.0))
    revision = series.revise()
    assert revision is not None and revision["accuracy"]["error"] == 0.0
    assert all(s["error"] == 0.0 for s in revision["accuracy"]["steps"])


def _run(batches: list[int], values: list[float], **kwargs: Any) -> dict[int, dict[str, Any]]:
    """Revisions by number when the points come in batches of these sizes."""
    series, config_json = _series(**kwargs)
    _started(series, config_json, values[:11])
    out, day = {}, 11
    for size in batches:
        for _ in range(size):
            series.add(_obs(day, values[day]))
            day += 1
        revision = series.revise()
        if revision is not None:
            out[revision["revision"]] = revision
    return out


def test_the_scores_do_not_depend_on_how_points_were_batched() -> None:
    values = [float(v) for v in np.random.default_rng(1).normal(100, 5, 60).round(2)]
    one_by_one = _run([1] * 49, values)
    in_batches = _run([5, 1, 13, 7, 3, 20], values)
    assert set(in_batches) <= set(one_by_one)
    for number, revision in in_batches.items():
        assert revision["accuracy"] == one_by_one[number]["accuracy"], number
        assert revision["forecast"] == one_by_one[number]["forecast"]


def test_drift_triggers_a_reselection_at_a_point_of_the_data_and_pauses_the_series() -> None:
    values = [10.0] * 20 + [10.0 + 5 * d for d in range(1, 40)]  # flat, then a steep trend
    series, config_json = _series(patience=3)
    _started(series, config_json, values[:11], error=1.0)
    triggers, revisions = [], []
    for day in range(11, len(values)):
        series.add(_obs(day, values[day]))
        revisions.append(series.revise())
        if (trigger := series.take_trigger()) is not None:
            triggers.append(trigger)
    (trigger,) = triggers  # one at a time: no second trigger while the first is pending
    assert trigger.reason == DRIFT and trigger.rolling_error is not None and trigger.rolling_error > 1.5
    # Pooled over steps 1-3 with the zero misses before the change, the mean passes 1.5 with day 22 (misses
    # 5, 10, 15): days 22, 23, 24 in a row; day 24 (point 25) is final with day 25's observation (the 26th).
    assert (trigger.position, trigger.triggered_at) == (25, 26)
    assert len(trigger.snapshot) == 10 and trigger.snapshot.index[-1] == pd.Timestamp("2026-01-25")
    at = trigger.triggered_at - 1 - 11  # revisions[i]: after day 11 + i, the observation count 12 + i
    assert revisions[at - 1] is not None and all(r is None for r in revisions[at:])  # nothing from the trigger on
    # the model stays: the revisions go on, as if there had been no re-selection
    assert not series.resolve(Decision(False, why="kept"))
    resumed = series.revise()
    assert resumed is not None and resumed["revision"] == len(values) and resumed["switched"] is None
    fresh = _run([len(values) - 11], values)[len(values)]
    assert resumed["forecast"] == fresh["forecast"]


def test_a_switch_fits_the_new_model_on_the_trigger_window_and_says_why() -> None:
    values = [float(d % 7) for d in range(60)]
    series, config_json = _series(every=10)
    _started(series, config_json, values[:11])
    trigger = None
    for day in range(11, 26):  # fewer than 10 points after the trigger: no second one on schedule yet
        series.add(_obs(day, values[day]))
        series.revise()
        trigger = trigger or series.take_trigger()
    assert trigger is not None and trigger.reason == SCHEDULE and trigger.position == 20  # 10 after point 10
    decision = Decision(True, "seasonal_naive", "none", 0, {}, old_error=3.0, new_error=0.5, why="won")
    assert series.resolve(decision)
    choice = Choice("seasonal_naive", "none", 0, {}, validation_error=0.5)
    series.switch(choice, fit_live(config_json, trigger.snapshot, choice), decision)
    revision = series.revise()
    assert revision is not None and revision["model"] == "seasonal_naive"
    assert revision["switched"] == {"reason": "schedule", "triggered_at": trigger.triggered_at, "from_model": "naive",
                                    "from_transformation": "none", "from_window": 0, "old_error": 3.0,
                                    "new_error": 0.5, "rolling_error": trigger.rolling_error}
    assert revision["selected_at"] == trigger.triggered_at
    # a weekly pattern: seasonal naive, caught up with every point since the trigger, forecasts it exactly
    assert revision["revision"] == 26 and revision["forecast"]["yhat"] == [values[d] for d in range(26, 29)]
    assert revision["accuracy"]["error"] == 0.0 and revision["accuracy"]["scored"] > 0
    series.add(_obs(26, values[26]))
    assert series.revise()["switched"] == revision["switched"]  # type: ignore[index]  # the model's provenance


# --- the decision -------------------------------------------------------------------------------------------

def _best(model: str, rows: list[tuple[str, float | None]]) -> dict[str, Any]:
    comparison = [{"model": m, "transformation": "none", "window": 0, "metrics": {} if e is None else {"MAE": e},
                   "params": {"p": m}, "error": None if e is not None else "failed"} for m, e in rows]
    chosen = next(r for r in comparison if r["model"] == model)
    return {"model": model, "transformation": "none", "window": 0, "main_accuracy_estimator": "mae",
            "metrics": chosen["metrics"], "comparison": comparison}


def test_a_new_choice_replaces_the_old_only_when_it_wins_on_the_same_window() -> None:
    won = decide("naive", "none", 0, _best("arima", [("arima", 1.0), ("naive", 2.0)]))
    assert won.switch and (won.model, won.params, won.old_error, won.new_error) == ("arima", {"p": "arima"}, 2.0, 1.0)
    again = decide("naive", "none", 0, _best("naive", [("arima", 3.0), ("naive", 2.0)]))
    assert not again.switch and "again" in again.why
    tie = decide("naive", "none", 0, _best("arima", [("arima", 2.0), ("naive", 2.0)]))
    assert not tie.switch and "did not beat" in tie.why
    old_failed = decide("naive", "none", 0, _best("arima", [("arima", 2.0), ("naive", None)]))
    assert old_failed.switch and old_failed.old_error is None
    nothing = decide("naive", "none", 0, {"model": None, "main_accuracy_estimator": "mae", "comparison": []})
    assert not nothing.switch and "failed" in nothing.why


def test_a_drift_switches_only_when_it_shows_on_the_latest_window_too() -> None:
    best = _best("arima", [("arima", 1.0), ("naive", 2.0)])  # arima wins the latest window
    noise = decide("naive", "none", 0, best, confirm_above=2.5)  # naive's 2.0 there: under its threshold
    assert not noise.switch and "did not show" in noise.why and (noise.old_error, noise.new_error) == (2.0, 1.0)
    at = decide("naive", "none", 0, best, confirm_above=2.0)  # equal is not above
    assert not at.switch
    drift = decide("naive", "none", 0, best, confirm_above=1.5)
    assert drift.switch and drift.model == "arima"
    assert decide("naive", "none", 0, best, confirm_above=None).switch  # a schedule: winning is enough
    old_failed = decide("naive", "none", 0, _best("arima", [("arima", 2.0), ("naive", None)]), confirm_above=9.0)
    assert old_failed.switch  # no error of the old model to confirm with: the winner takes it


def test_a_kept_answer_decides_as_the_record_does() -> None:
    import json

    best = {**_best("arima", [("arima", 1.0), ("naive", 2.0)]), "forecast": {"yhat": [1.0]}, "history_values": [1.0]}
    kept = json.loads(json.dumps(answer_of(best)))  # as the service's table keeps it
    assert decide("naive", "none", 0, kept) == decide("naive", "none", 0, best)
    assert "forecast" not in kept and "history_values" not in kept


def test_due() -> None:
    assert due(30, 10, over=3, patience=3, every=0) == DRIFT
    assert due(30, 10, over=2, patience=3, every=20) == SCHEDULE
    assert due(29, 10, over=2, patience=3, every=20) is None
    assert due(30, 10, over=9, patience=0, every=0) is None  # patience 0: no drift re-selection


@pytest.mark.parametrize("estimator", ["mae", "mse", "rmse", "am", "sd", "mape", "smape", "mase"])
def test_the_running_drift_error_is_the_exact_one(estimator: str) -> None:
    rng = np.random.default_rng(5)
    scorer = Scorer(estimator, horizon=4, span=3, window=25, season=7)
    for position in range(1, 3000):  # past RESUM_EVERY pair changes, with evictions all along
        scorer.forecast(position, rng.normal(50, 5, 4))
        scorer.actual(position, float(rng.normal(50, 5)))
        if position % 97 == 0:
            exact = scorer.summary(None, 1.5)["error"]
            assert scorer.error() == pytest.approx(exact, rel=1e-9), position


def test_a_request_with_one_candidate_is_never_reselected() -> None:
    """One model, one transformation, one window: a re-selection could only choose the current model again, so
    drift never asks for one (no pool work, no pause of the revisions); with a second model it does."""
    values = [10.0] * 20 + [10.0 + 5 * d for d in range(1, 40)]  # flat, then a steep trend: drift
    for models, expected in (("naive", 0), ("naive,theta", 1)):
        config = make_config(input_parameters={"source_topic": "t", "frequency": "D", "live_parameters": {
                                 "min_points": 10, "accuracy_window": 20, "reselect_patience": 3}},
                             model_parameters={"models": models, "possible_transformations": "none",
                                               "main_accuracy_estimator": "mae", "test_values": 3,
                                               "delta_training_percentage": 100, "prediction_lags": 3})
        live = live_request(config)
        assert live is not None
        series = LiveSeries("sales", config, live.live, "D")
        assert series.can_switch is (expected > 0)
        _started(series, config.to_json(), values[:11], error=1.0)
        triggers = []
        for day in range(11, len(values)):
            series.add(_obs(day, values[day]))
            series.revise()
            if (trigger := series.take_trigger()) is not None:
                triggers.append(trigger)
        assert len(triggers) == expected, models
        assert series.scorer is not None and series.scorer.over > 3  # the drift was seen either way
