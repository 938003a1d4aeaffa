"""Scaling: `python bench/scaling.py [--repeats 1] [--full]`.

1. Predictor processes: a 4-series request (four series of bench/data/monthly.csv, `--models`, no
   transformation) with 1 predictor process, then with 2 (one pool worker each, so a process is a core):
   `predictor_scaling_2x` = wall with 1 ÷ wall with 2, medians of `--repeats` (target ≥ 1.7). Each
   configuration is warmed by a one-series request first (fresh pool workers load the model code).
2. Series count: N monthly series × 120 points of naive,theta (bench/scale_series.py's data), the system (one
   predictor, a pool worker per core) against the core alone: N = 10, 100; `--full` adds the scale issue's
   1,000 and 2,000.
3. Series length: one five-minute series of 1,000, 10,000 and 100,000 points, naive,seasonal_naive
   (bench/long_series.py's data), the system against the core.
Writes bench/results/scaling.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any

import long_series
import scale_series
from compute import load, system_run, with_url
from scale_common import ROOT, Running, core_seconds, print_table, running, save, update_summary

FOUR = "sales,visitors,price,demand"
DEFAULT_MODELS = "arima,exponentialsmoothing"


def four_series(url: str, models: str) -> dict[str, Any]:
    config, _ = load(ROOT / "bench" / "configs" / "monthly.json")
    config["model_parameters"].update(models=models, possible_transformations="none")
    return with_url(config, url, FOUR)


def predictors(env: Running, repeats: int, models: str) -> dict[str, Any]:
    _, csv_path = load(ROOT / "bench" / "configs" / "monthly.json")
    env.files[csv_path.name] = csv_path.read_bytes()
    url = f"{env.base_url}/{csv_path.name}"
    walls: dict[int, list[float]] = {}
    for count in (1, 2):
        env.set_predictors(count, 1)
        system_run(env, with_url(four_series(url, models), url, "sales"))  # warm
        walls[count] = [system_run(env, four_series(url, models))["wall_s"] for _ in range(repeats)]
    speedup = statistics.median(walls[1]) / statistics.median(walls[2])
    rows = [{"predictors": n, "workers_each": 1, "wall_s": round(statistics.median(w), 2),
             "speedup": round(statistics.median(walls[1]) / statistics.median(w), 2)} for n, w in walls.items()]
    print_table(f"scaling: predictor processes, 4 series × {models} (median of {repeats})", rows)
    return {"models": models, "walls_s": walls, "rows": rows, "speedup": round(speedup, 2)}


def curve(env: Running, points_of: dict[str, tuple[bytes, dict[str, Any]]], label: str) -> list[dict[str, Any]]:
    """System and core wall for each (csv, config) of `points_of`; the config's url is replaced."""
    rows = []
    for name, (csv, config) in points_of.items():
        env.files[f"{name}.csv"] = csv
        core_s, core_best = core_seconds(config, csv, env.concurrency)
        served = dict(config, input_parameters={**config["input_parameters"],
                                                "source_data_url": f"{env.base_url}/{name}.csv"})
        run = system_run(env, served)
        rows.append({label: name, "core_s": round(core_s, 2), "system_s": round(run["wall_s"], 2),
                     "ratio": round(run["wall_s"] / core_s, 2),
                     "same_best": sum(run["best"].get(s) == m for s, m in core_best.items())})
    return rows


def measure(env: Running, repeats: int = 1, full: bool = False, models: str = DEFAULT_MODELS) -> dict[str, Any]:
    two = predictors(env, repeats, models)
    env.set_predictors(1, os.cpu_count() or 1)  # as `make up` runs it
    sizes = (10, 100, 1000, 2000) if full else (10, 100)
    env.files["warm.csv"] = scale_series.csv_of(3, 120)
    system_run(env, scale_series.config_for(f"{env.base_url}/warm.csv"))  # the fresh pool workers load code
    by_count = curve(env, {str(n): (scale_series.csv_of(n, 120), scale_series.config_for("upload:x.csv"))
                           for n in sizes}, "series")
    print_table("scaling: series count (120 monthly points each, naive,theta)", by_count)
    by_length = curve(env, {str(p): (long_series.csv_of(p), long_series.config_for("upload:x.csv"))
                            for p in (1_000, 10_000, 100_000)}, "points")
    print_table("scaling: series length (one five-minute series, naive,seasonal_naive)", by_length)
    return {"predictors": two, "by_series_count": by_count, "by_series_length": by_length,
            "summary": {"predictor_scaling_2x": two["speedup"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="also 1,000 and 2,000 series")
    parser.add_argument("--models", default=DEFAULT_MODELS, help="of the 4-series request")
    args = parser.parse_args()
    with running(os.cpu_count() or 1) as env:
        out = measure(env, args.repeats, args.full, args.models)
    save("scaling", out)
    update_summary(out["summary"])


if __name__ == "__main__":
    main()
