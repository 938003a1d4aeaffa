"""CPU of the live models' forecasts alone: `python bench/live_model_cost.py [--series 40] [--rounds 20]`.

bench/live.py's stream (a weekly pattern, a trend and noise), `--series` series per model (arima, autoets,
theta, naive), each fitted on 30 points and then fed 60 more (`LiveModel.update`), as bench/live_cost.py's
series are when it measures. Prints CPU µs of the call a revision makes, `forecast(7, LEVELS, tail=[next])`
(a copy of the model with its provisional point, then the forecast with 80/95 intervals), per model, and for
theta also after 1,000 points (`theta_1000`: its cost is flat in the points it has folded) and a forecast of a
model that has forecast before at the same point count (`theta_1000_kept`: its paths kept). bench/live_cost.py
measures the whole revision (decoding, scoring, encoding) around these."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

BENCH = str(Path(__file__).resolve().parent)  # bench/live.py's imports (its siblings), after the repository
sys.path[:] = [str(Path(BENCH).parent)] + [p for p in sys.path if p != BENCH] + [BENCH]

from forecasting.live.models import LiveModel, live_model  # noqa: E402
from forecasting.models import LEVELS, get_model_class  # noqa: E402

FIT, FED = 30, 60


def _stream(series: int) -> Any:
    spec = importlib.util.spec_from_file_location("bench_live", Path(BENCH) / "live.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.Stream(FIT, per_request=series)


def _values(stream: Any, i: int, n: int) -> list[float]:
    return [float(json.loads(stream.record(i)[2])["value"]) for _ in range(n)]


def _cpu_us(calls: list[tuple[LiveModel, list[float]]], rounds: int) -> float:
    best = float("inf")
    for _ in range(3):  # the least disturbed of three
        t0 = time.process_time()
        for _ in range(rounds):
            for model, tail in calls:
                model.forecast(7, LEVELS, tail=tail)
        best = min(best, time.process_time() - t0)
    return round(1e6 * best / rounds / len(calls), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=40, help="series per model")
    parser.add_argument("--rounds", type=int, default=20, help="forecasts of each series per measure")
    args = parser.parse_args()
    bench_live, stream = _stream(args.series)
    out: dict[str, float] = {}
    long_theta: list[tuple[LiveModel, list[float]]] = []
    for k, name in enumerate(bench_live.MODELS):
        calls = []
        for i in range(k * args.series, (k + 1) * args.series):
            values = _values(stream, i, 1_100 if name == "theta" else FIT + FED + 1)
            y = pd.Series(values[:FIT], index=pd.date_range("2020-01-01", periods=FIT, freq="D"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = live_model(get_model_class(name)(season_length=7).fit(y), y)
            model.update(values[FIT:FIT + FED])
            calls.append((model, [values[FIT + FED]]))
            if name == "theta":
                long = model.fork()
                long.update(values[FIT + FED:-1])
                long_theta.append((long, [values[-1]]))
        out[name] = _cpu_us(calls, args.rounds)
    out["theta_1000"] = _cpu_us(long_theta, args.rounds)
    kept = [(model.ahead(tail), []) for model, tail in long_theta]  # as a revision's model after its point
    for model, _ in kept:
        model.forecast(7, LEVELS)
    out["theta_1000_kept"] = _cpu_us(kept, args.rounds)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
