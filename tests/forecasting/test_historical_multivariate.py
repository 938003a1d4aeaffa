"""TIMEX's multivariate stage inside every historical step, in the core (forecasting.historical_multivariate run by
forecasting.pipeline). `mockup` forecasts 0, or the number of its regressors when it has some: a series around 1
is forecast better with a regressor, so the step keeps its multivariate unit exactly where one was planned."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.historical_multivariate import units_bound
from forecasting.pipeline import forecast_all
from tests.plugins.core_series import make_config, to_csv

K, N = 2, 72


def shifted_around_one() -> pd.DataFrame:
    """b is a K steps ahead (b leads a), around 0 (TIMEX fills the points a shift empties with 0): b is a's
    extra regressor at every step; a is around 1. c is noise: no series' regressor, none its own."""
    rng = np.random.default_rng(5)
    y = np.zeros(N + K)
    for start in range(0, N + K, 7):
        y[start:] = rng.normal(0, 3)
    y -= y.mean()
    return pd.DataFrame({"date": pd.date_range("2000-01-01", periods=N, freq="MS").strftime("%Y-%m-%d"),
                         "a": 1 + 0.05 * y[:N], "b": y[K:K + N], "c": np.random.default_rng(9).normal(0, 1, N)})


def test_each_historical_step_reruns_xcorr_and_keeps_the_better_multivariate_unit() -> None:
    config = make_config(
        model_parameters={"models": "mockup", "possible_transformations": "none", "test_values": 6,
                          "delta_training_percentage": 50, "prediction_lags": 6},
        xcorr_parameters={"xcorr_max_lags": 4, "xcorr_extra_regressor_threshold": 0.5, "xcorr_mode": "pearson",
                          "xcorr_mode_target": "pearson"},
        # 2005-08-01 is position 67: points 68..71, 2 per step (2 steps)
        historical_prediction_parameters={"initial_index": "2005-08-01", "delta": 2, "save_path": "h.pkl"})
    frame = shifted_around_one()
    choices = forecast_all(config, to_csv(frame), max_workers=1, historical_multivariate=True)
    a, c = choices["a"], choices["c"]
    assert a.xcorr is not None and a.xcorr["regressors"] == ["b"] and c.xcorr is not None
    assert c.xcorr["regressors"] == []
    past_a, past_c = a.historical["models"]["mockup"], c.historical["models"]["mockup"]  # type: ignore[index]
    # a: every step multivariate (one regressor: mockup forecasts 1); c: univariate (0) at every step.
    assert past_a["forecast"] == [1.0] * 4 and past_c["forecast"] == [0.0] * 4
    assert past_a["actual"] == list(frame["a"][68:]) and past_a["error"] is None
    # What each step's forecast came from (bench/parity.py compares it with TIMEX's choice per step).
    assert past_a["steps"] == [{"points_known": 68, "transformation": "none", "regressors": ["b"]},
                               {"points_known": 70, "transformation": "none", "regressors": ["b"]}]
    assert [s["regressors"] for s in past_c["steps"]] == [[], []]
    series = pd.Series(frame["a"].to_numpy(), index=pd.DatetimeIndex(frame["date"]), name="a")
    assert units_bound(config, series) == 2  # 2 steps × 1 model that takes regressors, for the request limits
    without = make_config(model_parameters={"models": "mockup"},
                          historical_prediction_parameters={"initial_index": "2005-08-01", "delta": 2,
                                                            "save_path": "h.pkl"})
    assert units_bound(without, series) == 0
