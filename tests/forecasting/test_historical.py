"""Historical predictions (TIMEX's compute_historical_predictions) on series with known values: how many past
forecasts, which ones, and their errors, computed here independently of the core."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecasting.config import ConfigError, parse_config
from forecasting.historical import choose_steps, collect, first_known, historical_units, plan, run_step, steps
from forecasting.series import to_wire
from forecasting.units import Forecast, UnitResult, UnitSpec, plan_units_for

N = 30


def _config(initial_index: int | str, delta: int | None = None, models: str = "naive,mockup",
            transformations: str = "none", **extra: object) -> dict:
    hp: dict = {"initial_index": initial_index, "save_path": "historical.pkl"}
    if delta is not None:
        hp["delta"] = delta
    return {"input_parameters": {"source_data_url": "http://127.0.0.1/x.csv"},
            "model_parameters": {"models": models, "possible_transformations": transformations,
                                 "main_accuracy_estimator": "mae", "test_values": 3,
                                 "delta_training_percentage": 30, "prediction_lags": 4, **extra},
            "historical_prediction_parameters": hp}


def _squares(n: int = N) -> pd.Series:
    """y = (t + 1)², daily from 2000-01-01: every past forecast of naive is known exactly."""
    index = pd.date_range("2000-01-01", periods=n, freq="D")
    return pd.Series((np.arange(n, dtype=float) + 1) ** 2, index=index, name="sq")


def _run(raw: dict, series: pd.Series) -> dict:
    config = parse_config(raw).config
    known = first_known(config, series)
    results = [run_step(config, series, spec) for spec in plan(config, len(series), known)]
    return collect(config, results, len(series), known, to_wire(series)[:2], "naive")


def test_every_point_after_initial_index_is_forecast_with_the_data_known_then() -> None:
    series = _squares()
    y = series.to_numpy()
    # initial_index 2000-01-20 is position 19: points 20..29 are predicted, 3 at a time (the last step: 1).
    answer = _run(_config("2000-01-20", delta=3), series)
    assert answer["initial_index"] == 19 and answer["delta"] == 3 and answer["best_model"] == "naive"
    naive, mockup = answer["models"]["naive"], answer["models"]["mockup"]
    assert len(naive["forecast"]) == len(naive["actual"]) == len(naive["timestamps"]) == N - 20
    assert naive["timestamps"][0].startswith("2000-01-21") and naive["timestamps"][-1].startswith("2000-01-30")
    # Independently: point i is forecast at the step that knew points up to e = 20 + 3·k ≤ i; naive says y[e-1].
    expected = [y[20 + 3 * ((i - 20) // 3) - 1] for i in range(20, N)]
    assert naive["forecast"] == pytest.approx(expected)
    assert naive["actual"] == pytest.approx(list(y[20:]))
    err = y[20:] - np.array(expected)
    assert naive["metrics"]["mae"] == pytest.approx(np.mean(np.abs(err)))
    assert naive["metrics"]["rmse"] == pytest.approx(math.sqrt(np.mean(err ** 2)))
    assert naive["metrics"]["am"] == pytest.approx(np.mean(err))
    assert naive["metrics"]["sd"] == pytest.approx(np.std(err))
    assert mockup["forecast"] == [0.0] * (N - 20)  # TIMEX's mockup: 0 everywhere
    assert mockup["metrics"]["mae"] == pytest.approx(np.mean(y[20:]))
    assert naive["error"] is None and mockup["error"] is None
    assert [(s["points_known"], s["transformation"], s["regressors"]) for s in naive["steps"]] == [
        (e, "none", []) for e in range(20, N, 3)]


def test_delta_one_by_default_and_the_timex_docstring_example() -> None:
    """TIMEX's own example: 30 daily points, initial_index 2000-01-25: forecasts for 01-26 .. 01-30."""
    series = _squares()
    answer = _run(_config("2000-01-25"), series)
    naive = answer["models"]["naive"]
    assert [t[:10] for t in naive["timestamps"]] == [f"2000-01-{d}" for d in range(26, 31)]
    assert naive["forecast"] == pytest.approx(list(series.to_numpy()[24:29]))  # one step ahead: y[i-1]


def test_steps_follow_timex_iterations() -> None:
    assert steps(20, 30, 3) == [(20, 3), (23, 3), (26, 3), (29, 1)]
    assert steps(20, 30, 5) == [(20, 5), (25, 5)]
    assert steps(25, 30, 1) == [(25, 1), (26, 1), (27, 1), (28, 1), (29, 1)]
    assert steps(0, 30, 1) == []


def test_initial_index_as_position_date_or_last_point() -> None:
    series = _squares()
    assert first_known(parse_config(_config(19)).config, series) == 20
    # A date between two points: the last point known on that date.
    weekly = _squares(120).iloc[::7].asfreq("7D")  # 2000-01-01, 01-08, ..., 02-26 (position 8), 03-04, ...
    assert first_known(parse_config(_config("2000-03-01")).config, weekly) == 9
    # At the last point, TIMEX recomputes the last delta points.
    assert first_known(parse_config(_config("2000-01-30", delta=2)).config, series) == N - 2
    assert first_known(parse_config({**_config(1), "historical_prediction_parameters": None}).config, series) == 0


@pytest.mark.parametrize("initial_index, words", [
    (3, r"only 4 points up to it; the first historical step needs test_values \(3\)"),
    (N, "past the end"),
    ("1999-12-01", "before the first point"),
    ("2001-01-01", "after the last point"),
    ("not a date", "cannot read"),
])
def test_initial_index_that_does_not_fit_is_said_plainly(initial_index: int | str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        first_known(parse_config(_config(initial_index)).config, _squares())


def test_config_keeps_save_path_with_the_results_and_refuses_a_negative_position() -> None:
    parsed = parse_config(_config(10))
    assert any("save_path" in w and "kept with the results" in w for w in parsed.warnings)
    assert parsed.config.historical_prediction_parameters.delta == 1
    with pytest.raises(ConfigError, match="initial_index"):
        parse_config(_config(-1))
    with pytest.raises(ConfigError, match="delta"):
        parse_config(_config(10, delta=0))


def test_units_are_step_by_model_by_transformation_and_counted_for_the_limits() -> None:
    config = parse_config(_config("2000-01-20", delta=3, transformations="none,log_modified")).config
    series = _squares()
    units = plan(config, N, 20)
    assert len(units) == 4 * 2 * 2 and {u.historical_end for u in units} == {20, 23, 26, 29}
    assert all(u.window == 0 for u in units)
    assert historical_units(config, series) == (16, 10)
    assert plan_units_for(config, N, "sq")[0].historical_end == 0


def test_each_step_keeps_the_transformation_with_the_lower_validation_error() -> None:
    config = parse_config(_config(19, transformations="none,log_modified")).config

    def result(t: str, mae: float, yhat: float, end: int = 20) -> UnitResult:
        return UnitResult(UnitSpec("naive", t, 0, historical_end=end), metrics={"MAE": mae},
                          forecast=Forecast(["2000-01-21T00:00:00"], [yhat]))

    chosen = choose_steps(config, [result("none", 2.0, 1.0), result("log_modified", 1.0, 5.0),
                                   result("none", 1.0, 7.0, end=21), result("log_modified", 1.0, 9.0, end=21)])
    assert chosen["naive"][20].spec.transformation == "log_modified"  # lower error
    assert chosen["naive"][21].spec.transformation == "none"  # a tie: the config's order


def test_a_step_that_failed_everywhere_leaves_its_points_empty_and_says_why() -> None:
    series = _squares()
    config = parse_config(_config("2000-01-20", delta=3)).config
    results = [run_step(config, series, spec) for spec in plan(config, N, 20)]
    broken = [UnitResult(r.spec, error="boom") if r.spec.historical_end == 23 and r.spec.model == "naive" else r
              for r in results]
    naive = collect(config, broken, N, 20, to_wire(series)[:2], "naive")["models"]["naive"]
    assert naive["forecast"][3:6] == [None] * 3 and None not in naive["forecast"][:3] + naive["forecast"][6:]
    assert "boom" in naive["error"]
    y = series.to_numpy()
    kept = [i for i in range(20, N) if not 23 <= i < 26]
    expected = [y[20 + 3 * ((i - 20) // 3) - 1] for i in kept]
    assert naive["metrics"]["mae"] == pytest.approx(np.mean(np.abs(y[kept] - expected)))


def test_historical_units_count_toward_the_request_limit() -> None:
    from forecasting.limits import RequestLimits, check_data

    series = {"sq": _squares()}
    without = parse_config({**_config(19), "historical_prediction_parameters": None}).config
    ordinary = len(plan_units_for(without, N, "sq"))  # 2 models × 1 transformation × windows
    config = parse_config(_config(19, delta=3)).config  # + 4 steps × 2 models
    assert check_data(config, series, RequestLimits(max_units_per_request=ordinary + 8)) == []
    (error,) = check_data(config, series, RequestLimits(max_units_per_request=ordinary + 7))
    assert f"{ordinary + 8} units of work" in error.message and "historical steps" in error.message
    assert "TIMEX_MAX_UNITS_PER_REQUEST" in error.message
