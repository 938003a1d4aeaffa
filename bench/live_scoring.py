"""What realised accuracy costs a live series: `python bench/live_scoring.py [--points N] [--batch B] [--horizon H]`.

For each live model kind, a LiveSeries (forecasting.live.follow) is started on 60 points and then folds N more
in batches of B, one revision per batch: the CPU microseconds a point of add + revise, all in (the point's
scoring against the forecasts before it, the forecast after it, the drift check, the accuracy summary of each
revision: forecasting.live.accuracy). Then the scorer alone: a point (score + record a forecast + drift check)
and a revision's summary. Prints one line each.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from forecasting.config import config_from_json
from forecasting.live.accuracy import Scorer
from forecasting.live.follow import Choice, LiveSeries, fit_live
from forecasting.live.observations import Observation
from forecasting.live.params import live_request

MODELS = ("naive", "seasonal_naive", "autoets", "arima", "theta")


def fold(model: str, points: int, batch: int, horizon: int) -> float:
    """CPU µs a point of add + revise for `model` (drift checked, never triggered)."""
    raw = {"input_parameters": {"source_topic": "t", "frequency": "D",
                                "live_parameters": {"min_points": 60, "reselect_patience": 10}},
           "model_parameters": {"models": model, "possible_transformations": "none", "main_accuracy_estimator": "mae",
                                "test_values": 7, "prediction_lags": horizon}}
    config = config_from_json(json.dumps(raw))
    live = live_request(config)
    assert live is not None
    series = LiveSeries("y", config, live.live, "D")
    rng = np.random.default_rng(0)
    n = 61 + points
    values = 100 + 10 * np.sin(np.arange(n) * 2 * np.pi / 7) + rng.normal(0, 1, n)
    stamps = pd.date_range("2026-01-01", periods=n, freq="D")
    for i in range(61):
        series.add(Observation("y", stamps[i], float(values[i])))
    assert series.snapshot is not None
    choice = Choice(model, "none", 0, {}, validation_error=1e9)
    series.start(choice, fit_live(config.to_json(), series.snapshot, choice))
    start = time.process_time()
    for i in range(61, n):
        series.add(Observation("y", stamps[i], float(values[i])))
        if (i - 61) % batch == batch - 1:
            assert series.revise() is not None
    return (time.process_time() - start) / points * 1e6


def scorer(points: int, horizon: int) -> tuple[float, float]:
    """CPU µs of the scorer alone: a point, and a revision's summary."""
    s = Scorer("mae", horizon, min(7, horizon), 50)
    forecast = np.arange(float(horizon))
    start = time.process_time()
    for p in range(1, points + 1):
        s.forecast(p, forecast)
        s.actual(p, 3.0, 1e9)
    per_point = (time.process_time() - start) / points * 1e6
    start = time.process_time()
    for _ in range(200):
        s.summary(1.0, 1.5)
    return per_point, (time.process_time() - start) / 200 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=7)
    args = parser.parse_args()
    for model in MODELS:
        us = fold(model, args.points, args.batch, args.horizon)
        print(f"{model:15s} {us:8.1f} µs CPU a point, all in (batches of {args.batch}, horizon {args.horizon})")
    point, summary = scorer(args.points * 5, args.horizon)
    print(f"{'scorer':15s} {point:8.1f} µs a point, {summary:.1f} µs a revision's summary (window 50)")


if __name__ == "__main__":
    main()
