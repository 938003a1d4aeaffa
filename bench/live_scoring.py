"""What realised accuracy costs a live series: `python bench/live_scoring.py [--points N] [--batch B]`.

For each live model kind, a LiveSeries (forecasting.live.follow) is started on 60 points and then folds N more
in batches of B, publishing one revision per batch: the CPU microseconds per point of add + revise, with the
scoring of every point against the forecasts before it (forecasting.live.accuracy) and the accuracy summary of
each revision. `--without-scoring` times the same loop with the scorer's work stubbed out, for comparison.
Prints one line per model kind.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pandas as pd

from forecasting.config import TimexConfig, config_from_json
from forecasting.live import follow
from forecasting.live.follow import Choice, LiveSeries, fit_live
from forecasting.live.observations import Observation
from forecasting.live.params import live_request


def _config(model: str, horizon: int) -> TimexConfig:
    raw = {"input_parameters": {"source_topic": "t", "frequency": "D", "live_parameters": {"min_points": 60, "reselect_patience": 0}},
           "model_parameters": {"models": model, "possible_transformations": "none", "main_accuracy_estimator": "mae",
                                "test_values": 7, "prediction_lags": horizon}}
    return config_from_json(json.dumps(raw))


class _NoScorer:
    steps = 1
    over = 0

    def __init__(self, *_: Any, **__: Any) -> None: ...
    def forecast(self, *_: Any) -> None: ...
    def actual(self, *_: Any) -> bool: return False
    def error(self) -> None: return None
    def summary(self, *_: Any) -> dict[str, Any]: return {}


def run(model: str, points: int, batch: int, horizon: int, scoring: bool) -> float:
    config = _config(model, horizon)
    live = live_request(config)
    assert live is not None
    series = LiveSeries("y", config, live.live, "D")
    rng = np.random.default_rng(0)
    values = 100 + 10 * np.sin(np.arange(60 + points + 1) * 2 * np.pi / 7) + rng.normal(0, 1, 60 + points + 1)
    stamps = pd.date_range("2026-01-01", periods=len(values), freq="D")
    for i in range(61):
        series.add(Observation("y", stamps[i], float(values[i])))
    assert series.snapshot is not None
    choice = Choice(model, "none", 0, {}, validation_error=1.0)
    if not scoring:
        follow.Scorer = _NoScorer  # type: ignore[misc,assignment]
    series.start(choice, fit_live(config.to_json(), series.snapshot, choice))
    start = time.process_time()
    for i in range(61, 61 + points):
        series.add(Observation("y", stamps[i], float(values[i])))
        if (i - 61) % batch == batch - 1:
            series.revise()
    return (time.process_time() - start) / points * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=7)
    parser.add_argument("--without-scoring", action="store_true")
    args = parser.parse_args()
    for model in ("naive", "seasonal_naive", "autoets", "arima", "theta"):
        us = run(model, args.points, args.batch, args.horizon, not args.without_scoring)
        print(f"{model:15s} {us:8.1f} µs CPU a point (batches of {args.batch}, horizon {args.horizon}"
              f"{', scoring stubbed out' if args.without_scoring else ''})")


if __name__ == "__main__":
    main()
