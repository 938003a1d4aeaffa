"""`make bench`: latency, throughput, compute, scaling, live and accuracy on ONE embedded broker with the services
of `make up` (ingestion, predictor with a pool worker per core, validator, gateway; the live service during the
live bench), one after the other; each prints its tables and writes bench/results/NAME.json, and this run writes
bench/results/summary.json afresh (every key; `timex_wall_ratio` null without `--timex-reference`). Sized to aim
at 10 minutes on a quiet 2-core machine (with the live bench's 4, under 20): 10 s per throughput rate (the issue's
protocol: `--throughput-duration 60`), one compute repeat, the series count curve up to 100 series (`--full`: up
to 2,000), live at 10 s per rate and 150,000 observations (`--full`: 60 s and 1,000,000), accuracy on every 14th
M3 monthly series (`--full`: all 1,428; its core run takes far longer than the rest). Run one part alone with its
own script (same options).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy  # noqa: E402
import compute  # noqa: E402
import latency  # noqa: E402
import scaling  # noqa: E402
import throughput  # noqa: E402
from scale_common import SUMMARY_KEYS, machine, print_table, running, save, update_summary  # noqa: E402


def _live_bench():  # noqa: ANN202 - a module
    """bench/live.py, loaded by its path: imported as `live` it would be (or hide) the live service's package."""
    spec = importlib.util.spec_from_file_location("live_bench", Path(__file__).resolve().parent / "live.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["live_bench"] = module
    spec.loader.exec_module(module)
    return module


live_bench = _live_bench()

TARGETS = {"latency_p50_ms": ("≤", 20), "latency_p99_ms": ("≤", 80), "throughput_rps": ("≥", 500),
           "stream_overhead_ratio": ("≤", 0.10), "cpu_efficiency": ("≥", 0.85), "predictor_scaling_2x": ("≥", 1.7),
           "timex_wall_ratio": ("≤", 0.2), "m3_monthly_smape": ("≤", 13.3), "m3_monthly_owa": ("≤", 0.79),
           "m3_cpu_s_per_series": ("≤", 0.5), "live_p50_ms": ("≤", 50), "live_p99_ms": ("≤", 250),
           "live_max_rate": ("≥", 5000), "live_cpu_ms_per_point": ("≤", 0.4), "live_rss_growth": ("≤", 0.10),
           "request_cpu_ms": ("≤", 10)}


def met(key: str, value: float | None) -> str:
    if value is None:
        return "not measured"
    sign, target = TARGETS[key]
    return "yes" if (value <= target if sign == "≤" else value >= target) else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timex-reference", type=Path, help="the TIMEX reference dir (venv/ and stub/)")
    parser.add_argument("--requests", type=int, default=200, help="latency: sequential requests per path")
    parser.add_argument("--throughput-duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--throughput-start", type=float, default=8.0, help="first rate, requests/s")
    parser.add_argument("--repeats", type=int, default=2, help="compute and predictor-scaling repeats (medians)")
    parser.add_argument("--live-duration", type=float, default=10.0, help="live: seconds per rate")
    parser.add_argument("--live-points", type=int, default=150_000, help="live: observations in all (RSS)")
    parser.add_argument("--full", action="store_true",
                        help="scaling: also 1,000 and 2,000 series; accuracy: all 1,428 M3 monthly series; live: "
                             "60 s per rate and 1,000,000 observations")
    args = parser.parse_args()
    if args.timex_reference and not (args.timex_reference / "venv" / "bin" / "python").exists():
        raise SystemExit(f"{args.timex_reference} has no venv/bin/python: build it with the shared "
                         "timex-reference.sh or leave TIMEX_REFERENCE_DIR unset")
    t0, load0 = time.monotonic(), os.getloadavg()[0]
    summary: dict[str, float | None] = {}
    with running(os.cpu_count() or 1, gateway=True) as env:
        parts = {
            "latency": lambda: latency.measure(env, args.requests, 1000, args.requests),
            "throughput": lambda: throughput.measure(env, args.throughput_duration, args.throughput_start),
            "compute": lambda: compute.measure(env, compute.DEFAULT_CONFIG, args.repeats, args.timex_reference),
            "scaling": lambda: scaling.measure(env, args.repeats, args.full),
            "live": lambda: live_bench.measure(env, 60.0 if args.full else args.live_duration,
                                               1_000_000 if args.full else args.live_points),
            "accuracy": lambda: accuracy.measure(env, args.full),
        }
        seconds, errors = {}, {}
        for name, part in parts.items():
            started = time.monotonic()
            try:
                out = part()
            except Exception as exc:  # one part's error leaves its keys null, never the others unmeasured
                traceback.print_exc()
                errors[name] = out = {"error": f"{type(exc).__name__}: {exc}", "summary": {}}
            seconds[name] = round(time.monotonic() - started, 1)
            save(name, {**out, "seconds": seconds[name]})
            summary.update(out["summary"])
    elapsed = time.monotonic() - t0
    update_summary(summary, fresh=True)
    print_table(f"summary (bench/results/summary.json): {elapsed:.0f} s in all {seconds}; load average "
                f"{load0:.1f} at the start, {machine()['load_avg_1m']} at the end, {os.cpu_count()} cores, "
                f"speed_ref_ms {machine()['speed_ref_ms']}",
                [{"key": k, "value": summary.get(k), "target": " ".join(map(str, TARGETS[k])),
                  "met": met(k, summary.get(k))} for k in SUMMARY_KEYS])
    if errors:
        raise SystemExit(f"failed: {errors}")


if __name__ == "__main__":
    main()
