"""Many short series end to end: `python bench/scale_series.py [--sizes 10,100,1000,2000] [--points 120]`.

For each size N: N monthly series of `--points` points, models naive,theta, default windows; the stream
(broker, ingestion, one predictor with `--concurrency` workers, validator; started once, warmed by a small
request) against the core alone on the same config and process-pool width. Prints one JSON line per size
(wall seconds of both, their ratio — target ≤ 1.3 at 2,000 —, every series answered, the same best model as
the core, bytes each topic gained against the prepared data's size) and a last line with the peak RSS of
every service (target ≤ 1 GB each).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scale_common import core_seconds, print_json, running, service_rss


def csv_of(series: int, points: int, seed: int = 5) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(points)
    year = 2 * np.pi * t / 12
    level = rng.uniform(50, 500, series)[:, None]
    data = level * (1 + 0.2 * np.sin(year + rng.uniform(0, 6, series)[:, None])) + np.cumsum(
        rng.normal(0, 3, (series, points)), axis=1)
    frame = pd.DataFrame(data.T.round(3), columns=[f"s{i:05d}" for i in range(series)])
    frame.insert(0, "month", pd.date_range("2000-01-01", periods=points, freq="MS").strftime("%Y-%m-%d"))
    return frame.to_csv(index=False).encode()


def config_for(url: str) -> dict:
    return {"activity_title": "many series", "input_parameters": {"source_data_url": url,
                                                                 "index_column_name": "month", "frequency": "MS"},
            "model_parameters": {"models": "naive,theta", "test_values": 12, "prediction_lags": 6,
                                 "main_accuracy_estimator": "mae"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,100,1000,2000")
    parser.add_argument("--points", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    with running(args.concurrency) as env:
        env.files["warm.csv"] = csv_of(3, args.points)
        env.run(config_for(f"{env.base_url}/warm.csv"))  # pool workers and model libraries loaded
        for n in sizes:
            csv = csv_of(n, args.points)
            env.files[f"{n}.csv"] = csv
            core_s, core_best = core_seconds(config_for(f"upload:{n}.csv"), csv, args.concurrency)
            wall, view, written = env.run(config_for(f"{env.base_url}/{n}.csv"))
            answered = {s: r["model"] for s, r in view.results.items()}
            prepared = 16 * n * args.points
            print_json({"series": n, "points": args.points, "core_s": round(core_s, 2), "stream_s": round(wall, 2),
                        "ratio": round(wall / core_s, 2), "status": view.status, "answered": len(answered),
                        "same_best_as_core": sum(answered.get(s) == m for s, m in core_best.items()),
                        "units": sum(r["units_total"] for r in view.results.values()),
                        "prepared_bytes": prepared, "kafka_bytes": written,
                        "kafka_over_prepared": round(sum(written.values()) / prepared, 2),
                        "cpu_s": env.last_cpu})
        print_json({"peak_rss_mb": service_rss(env.stack)})


if __name__ == "__main__":
    main()
