"""End-to-end benchmark of the streaming system: `python bench/stream_e2e.py [CONFIG.json] [options]`.

Starts an embedded broker, the ingestion, the validator and `--predictors` predictor processes (each with
`--concurrency` pool workers), serves the config's CSV on 127.0.0.1, submits the config twice (cold: pool
processes and model libraries load; warm: what a running service costs) and prints ONE JSON line: wall
seconds of each request, units, the fit seconds summed over all units, and per series the best model.
Compare with `python bench/forecast_core.py CONFIG.json` (the core alone, same process-pool width).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scale_common import running  # noqa: E402  (a sibling script: bench/ is on sys.path)

from schemas import decode_as  # noqa: E402
from schemas.topics import PREDICTIONS  # noqa: E402
from timex_stream.runtime.history import read_range  # noqa: E402
from timex_stream.runtime.kafka import producer  # noqa: E402
from timex_stream.runtime.submit import submit  # noqa: E402
from timex_stream.tools.follow import follow  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_worker(bootstrap: str, rid: str, since_ms: int) -> dict[str, dict[str, float]]:
    """Units and fit seconds per predictor pool process for request `rid`, from the predictions topic."""
    workers: dict[str, dict[str, float]] = {}
    for msg in read_range(bootstrap, PREDICTIONS.name, since_ms):
        if msg.key().startswith(f"{rid}/".encode()):
            p = decode_as("Prediction", msg.value())
            w = workers.setdefault(p["worker"].rsplit("/", 1)[-1], {"units": 0, "fit_s": 0.0})
            w["units"] += 1
            w["fit_s"] = round(w["fit_s"] + p["fit_seconds"], 2)
    return workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", nargs="?", default=str(ROOT / "bench" / "configs" / "monthly.json"))
    parser.add_argument("--predictors", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1, help="pool workers per predictor")
    parser.add_argument("--columns", help="comma list: forecast only these series")
    args = parser.parse_args()

    config = json.loads(Path(args.config).read_text())
    csv = Path(config["input_parameters"]["source_data_url"])
    csv = csv if csv.is_absolute() else ROOT / csv
    if args.columns:
        index = config["input_parameters"]["index_column_name"]
        config["input_parameters"]["columns_to_load_from_url"] = f"{index},{args.columns}"

    with running(args.concurrency, predictors=args.predictors) as env:
        kafka, stack = env.kafka, env.stack
        env.files[csv.name] = csv.read_bytes()
        config["input_parameters"]["source_data_url"] = f"{env.base_url}/{csv.name}"
        prod = producer(kafka.bootstrap_servers)
        runs = []
        pids = {name: proc.pid for name, proc in stack.children.items() if not name.startswith("predictor")}
        pids["kafka"] = kafka.proc.pid  # type: ignore[union-attr]
        for _ in ("cold", "warm"):
            t0, since_ms = time.perf_counter(), int(time.time() * 1000)
            cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
            rid = submit(prod, config, origin="bench")
            view = follow(kafka.bootstrap_servers, [rid], timeout=1800)[rid]
            runs.append((time.perf_counter() - t0, view))
        workers = per_worker(kafka.bootstrap_servers, rid, since_ms)
        others_cpu = {name: round(cpu_seconds(pid) - cpu0[name], 2) for name, pid in pids.items()}
    (cold_s, _), (warm_s, view) = runs
    results = view.results
    print(json.dumps({
        "config": Path(args.config).name, "predictors": args.predictors, "concurrency": args.concurrency,
        "status": view.status, "cold_wall_s": round(cold_s, 2), "wall_s": round(warm_s, 2),
        "units": sum(r["units_total"] for r in results.values()),
        "fit_s": round(sum(row["fit_seconds"] for r in results.values() for row in r["comparison"]), 2),
        "workers": workers,  # units and fit seconds each pool process ran: how evenly the work was shared
        "others_cpu_s": others_cpu,  # CPU the broker and the other services took from the predictors meanwhile
        "series": {name: {"best": r["model"], "transformation": r["transformation"],
                          "MAE": round(r["metrics"].get("MAE", float("nan")), 4)}
                   for name, r in sorted(results.items())},
    }))


if __name__ == "__main__":
    main()
