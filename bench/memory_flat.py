"""Memory over many sequential requests: `python bench/memory_flat.py [--requests 1000] [--cap 50]`.

Starts an embedded broker, the ingestion, one predictor, the validator and the gateway (with
TIMEX_GATEWAY_MAX_REQUESTS=--cap), then sends `--requests` small requests one after the other through the
gateway's HTTP API (one series of 36 monthly points, model naive), each polled until done, with a
listing now and then. Prints one JSON line per checkpoint (after request 10, 100, 250, 500, ... and the
last): the resident memory (RSS, MB) of each service (the predictor with its pool processes) and the
gateway's cache counters; then a summary line with the validator's and the gateway's RSS at request 100 and at
the last. Flat means the figures at 100 and at 1,000 are about the same.
"""

from __future__ import annotations

import argparse
import json
import time

import psutil
import requests
from scale_common import running

CHECKPOINTS = (10, 100, 250, 500, 750)


def rss_mb(pid: int, with_children: bool = False) -> float:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)] if with_children else [proc]
    return round(sum(p.memory_info().rss for p in procs) / 2**20, 1)


def config(url: str) -> dict:
    return {"activity_title": "memory bench",
            "input_parameters": {"source_data_url": url, "index_column_name": "date", "frequency": "MS"},
            "model_parameters": {"models": "naive", "possible_transformations": "none",
                                 "main_accuracy_estimator": "mae", "test_values": 6,
                                 "delta_training_percentage": 50, "prediction_lags": 6}}


def metrics(base: str, token: str) -> dict[str, float]:
    text = requests.get(f"{base}/metrics", timeout=10, headers={"Authorization": f"Bearer {token}"}).text
    wanted = ("timex_gateway_requests_known", "timex_gateway_requests_cached", "timex_gateway_request_loads",
              "timex_gateway_request_evictions")
    return {line.split()[0].removeprefix("timex_gateway_"): float(line.split()[1])
            for line in text.splitlines() if line.split(" ")[0] in wanted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--cap", type=int, default=50, help="TIMEX_GATEWAY_MAX_REQUESTS")
    args = parser.parse_args()

    rows = [f"{1990 + i // 12}-{i % 12 + 1:02d}-01,{100 + (i * 7) % 23 + i}" for i in range(36)]
    with running(1, env={"TIMEX_GATEWAY_MAX_REQUESTS": str(args.cap)}, gateway=True) as env:
        env.files["one.csv"] = ("date,value\n" + "\n".join(rows) + "\n").encode()
        auth = {"Authorization": f"Bearer {env.stack.api_token}"}
        pids = {name: proc.pid for name, proc in env.stack.children.items()}
        body = config(f"{env.base_url}/one.csv")
        t0 = time.perf_counter()
        seen: dict[int, dict[str, float]] = {}
        for n in range(1, args.requests + 1):
            resp = requests.post(f"{env.gateway_url}/api/requests", json=body, headers=auth, timeout=30)
            resp.raise_for_status()
            status_url = f"{env.gateway_url}/api/requests/{resp.json()['request_id']}"
            deadline = time.monotonic() + 120
            while not (doc := requests.get(status_url, headers=auth, timeout=30).json())["done"]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"request {n} not done in 120 s: {doc['status']}")
                time.sleep(0.05)
            if doc["status"] != "done":
                raise RuntimeError(f"request {n}: {doc['status']} {doc['failures']}")
            if n % 50 == 0:
                requests.get(f"{env.gateway_url}/api/requests?limit=50", headers=auth, timeout=30).raise_for_status()
            if n in CHECKPOINTS or n == args.requests:
                seen[n] = {name: rss_mb(pid, with_children=name == "predictor") for name, pid in pids.items()}
                print(json.dumps({
                    "requests": n, "elapsed_s": round(time.perf_counter() - t0, 1), "cap": args.cap,
                    "rss_mb": seen[n], "gateway": metrics(env.gateway_url, env.stack.api_token or "")}), flush=True)
        first = 100 if 100 in seen else min(seen)
        print(json.dumps({"summary_rss_mb": {name: {str(first): seen[first][name],
                                                    str(args.requests): seen[args.requests][name]}
                                             for name in ("validator", "gateway")}}), flush=True)

if __name__ == "__main__":
    main()
