"""Long series end to end: `python bench/long_series.py [--points 200000] [--huge 1000000]`.

One series of `--points` five-minute points, models naive,seasonal_naive: the stream (broker, ingestion, one
predictor with `--concurrency` workers, validator; warmed by a small request) against the core alone on the
same config and process-pool width (target: within 5 s of the core); the bytes each topic gained on the
broker's disk against the prepared data's size (16 bytes a point); then one series of `--huge` points, which
must be answered or refused up front with a Failure naming TIMEX_MAX_POINTS_PER_SERIES. Prints ONE JSON line.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scale_common import core_seconds, print_json, running, service_rss

from timex_stream.runtime.records import history_of


def csv_of(points: int, seed: int = 11) -> bytes:
    t = np.arange(points)
    rng = np.random.default_rng(seed)
    day = 2 * np.pi * t / 288
    frame = pd.DataFrame({"ts": pd.date_range("2020-01-01", periods=points, freq="5min").strftime("%Y-%m-%d %H:%M"),
                          "load": (100 + 20 * np.sin(day) + rng.normal(0, 2, points)).round(3)})
    return frame.to_csv(index=False).encode()


def config_for(url: str) -> dict:
    return {"activity_title": "long series", "input_parameters": {"source_data_url": url, "index_column_name": "ts",
                                                                 "frequency": "5min"},
            "model_parameters": {"models": "naive,seasonal_naive", "test_values": 288, "prediction_lags": 288,
                                 "main_accuracy_estimator": "mae"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--huge", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()

    csv = csv_of(args.points)
    core_s, core_best = core_seconds(config_for("upload:long.csv"), csv, args.concurrency)
    out: dict = {"points": args.points, "core_s": round(core_s, 2), "core_best": core_best}
    with running(args.concurrency) as env:
        env.files["warm.csv"] = csv_of(5_000)
        env.run(config_for(f"{env.base_url}/warm.csv"))  # pool workers and model libraries loaded
        env.files["long.csv"] = csv
        wall, view, written = env.run(config_for(f"{env.base_url}/long.csv"))
        best = view.results.get("load", {})
        out.update(stream_s=round(wall, 2), over_core_s=round(wall - core_s, 2), status=view.status,
                   stream_best=best.get("model"), same_best=best.get("model") == core_best.get("load"),
                   units=best.get("units_total"), history_points=best.get("history_points"),
                   tail_points=len(history_of(best)) if best else 0,
                   prepared_bytes=16 * args.points, kafka_bytes=written,
                   kafka_total_bytes=sum(written.values()),
                   kafka_over_prepared=round(sum(written.values()) / (16 * args.points), 2),
                   failures=[f["message"] for f in view.failures])
        if args.huge:
            env.files["huge.csv"] = csv_of(args.huge)
            wall, view, written = env.run(config_for(f"{env.base_url}/huge.csv"))
            best = view.results.get("load", {})
            out["huge"] = {"points": args.huge, "wall_s": round(wall, 2), "status": view.status,
                           "answered": best.get("model"), "failures": [f["message"][:300] for f in view.failures],
                           "kafka_total_bytes": sum(written.values())}
        out["peak_rss_mb"] = service_rss(env.stack)
        print_json(out)


if __name__ == "__main__":
    main()
