"""Latency of a trivial request: `python bench/latency.py [--requests 200] [--points 1000]`.

One series of `--points` daily points uploaded inline, model naive, sent `--requests` times one after the
other (each waits for its answer) on the embedded broker with the services of `make up`, two ways:
- **topic**: a ForecastRequest produced to `configs` (`timex_stream.runtime.submit`, acked) → the best-models record
  read by a tailing consumer (`AnswerClock`); this is the `latency_p50_ms`/`latency_p99_ms` of the summary;
- **gateway**: POST /api/requests (multipart: config + csv) → the `done` event of /api/requests/ID/events;
- **baseline**: the same request to a minimal in-process HTTP service around the same core
  (bench/baseline_http.py), the side-by-side row: what the stream's hops cost over one process.
Each row also gives the CPU ms per request of all the system's processes (broker included; for the baseline,
its one process with its client) and the requests/s of one sequential client.
Prints the p50/p90/p99 (ms) of each (the first, cold request apart) and where the time of the topic path goes:
the median and p90 of each hop between the Kafka timestamps of the request's records (configs → datasets →
predictions → datasets (refit) → predictions → best-models → reader; without the refit round trip when the
predictor did the refit itself; configs → best-models → reader when the ingestion decided the request itself, the
fast lane). Writes bench/results/latency.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import requests
from confluent_kafka import Producer
from scale_common import AnswerClock, Running, print_table, quantile_ms, running, save, update_summary

from schemas.topics import BEST_MODELS, CONFIGS, DATASETS, PREDICTIONS
from timex_stream.runtime.history import read_range
from timex_stream.runtime.kafka import producer
from timex_stream.runtime.submit import submit

ANSWER_TIMEOUT_S = 120.0


def trivial_csv(points: int = 1000, seed: int = 3) -> bytes:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"day": pd.date_range("2020-01-01", periods=points, freq="D").strftime("%Y-%m-%d"),
                          "value": (100 + np.cumsum(rng.normal(0, 1, points))).round(3)})
    return frame.to_csv(index=False).encode()


def trivial_config() -> dict[str, Any]:
    return {"activity_title": "trivial", "input_parameters": {"source_data_url": "upload:trivial.csv",
                                                              "index_column_name": "day", "frequency": "D"},
            "model_parameters": {"models": "naive", "possible_transformations": "none", "test_values": 10,
                                 "prediction_lags": 10, "main_accuracy_estimator": "mae"}}


def via_topic(prod: Producer, clock: AnswerClock, csv: bytes, n: int) -> tuple[list[float], list[str]]:
    """`n` trivial requests produced to `configs` one after the other, each once answered: (seconds, ids). One
    producer for a bench's calls: a new one's first request waits ~0.5 s for its own start (metadata, producer id),
    which a warm request must not count."""
    config, seconds, rids = trivial_config(), [], []
    for _ in range(n):
        t0 = time.perf_counter()
        rid = submit(prod, config, csv=csv, origin="bench")
        seconds.append(clock.wait(rid, ANSWER_TIMEOUT_S) - t0)
        rids.append(rid)
    return seconds, rids


def via_gateway(env: Running, csv: bytes, n: int) -> list[float]:
    assert env.gateway_url, "started without the gateway"
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {env.stack.api_token}"
    config, seconds = json.dumps(trivial_config()), []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = http.post(f"{env.gateway_url}/api/requests", timeout=30,
                         files={"config": ("config.json", config), "csv": ("trivial.csv", csv)})
        resp.raise_for_status()
        events = http.get(f"{env.gateway_url}/api/requests/{resp.json()['request_id']}/events", stream=True,
                          timeout=ANSWER_TIMEOUT_S)
        done = False
        for line in events.iter_lines():  # the stream ends after `done`
            done = done or line == b"event: done"
            if done and line.startswith(b"data:"):
                break
        events.close()
        if not done:
            raise RuntimeError("the gateway's event stream ended without a done event")
        seconds.append(time.perf_counter() - t0)
    return seconds


def hops(env: Running, rids: list[str], since_ms: int, answered_ms: dict[str, float]) -> dict[str, list[float]]:
    """ms of each hop of the topic path per request, from the Kafka timestamps of each request's records."""
    wanted = set(rids)
    stamps: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for topic in (CONFIGS.name, DATASETS.name, PREDICTIONS.name, BEST_MODELS.name):
        for msg in read_range(env.kafka.bootstrap_servers, topic, since_ms):
            rid = (msg.key() or b"").decode().split("/", 1)[0]
            if rid in wanted:
                stamps[rid][topic].append(msg.timestamp()[1])
    two_pass = ("ingestion", "predictor", "validator (scores, sends refit)", "predictor (refit)",
                "validator (decides)", "best-models→reader")
    per_hop: dict[str, list[float]] = {name: [] for name in ("ingestion (decides in place)", *two_pass)}
    for rid in rids:
        s = stamps[rid]
        if not s[BEST_MODELS.name]:
            continue  # a failure: no breakdown
        d, p = sorted(s[DATASETS.name]), sorted(s[PREDICTIONS.name])
        if not d and not p:  # the fast lane: decided where it was ingested
            chain, names = [s[CONFIGS.name][0], s[BEST_MODELS.name][0]], ("ingestion (decides in place)",)
        elif not d or not p:
            continue  # a fast-lane request the validator decided (a Prediction not whole): not this bench's
        elif len(d) >= 2:  # the validator sent the final refit back to the predictor (TIMEX's second phase)
            chain, names = [s[CONFIGS.name][0], d[0], p[0], d[-1], p[-1], s[BEST_MODELS.name][0]], two_pass
        else:  # the predictor did the refit with the units (one pass)
            chain = [s[CONFIGS.name][0], d[0], p[-1], s[BEST_MODELS.name][0]]
            names = ("ingestion", "predictor", "validator (decides)")
        for name, (a, b) in zip(names, zip(chain, chain[1:], strict=False), strict=False):
            per_hop[name].append(b - a)
        per_hop["best-models→reader"].append(answered_ms[rid] - chain[-1])
    return {name: v for name, v in per_hop.items() if v}


def row(path: str, seconds: list[float], cpu_s: float | None = None) -> dict[str, Any]:
    """A path's figures; `cpu_s`: the CPU every process of the system (broker included) spent on the requests
    after the first."""
    warm = seconds[1:] or seconds
    return {"path": path, "requests": len(seconds), "first_ms": round(1000 * seconds[0], 1),
            "p50_ms": quantile_ms(warm, 0.5), "p90_ms": quantile_ms(warm, 0.9), "p99_ms": quantile_ms(warm, 0.99),
            "max_ms": round(1000 * max(warm), 1),
            "cpu_ms_per_request": None if cpu_s is None else round(1000 * cpu_s / max(1, len(seconds) - 1), 2),
            "requests_per_s": round(len(warm) / sum(warm), 1)}


def cpu_total(env: Running) -> float:
    return sum(env.cpu_seconds().values())


def measure(env: Running, n: int = 200, points: int = 1000, gateway: int = 200, baseline: int = 200
            ) -> dict[str, Any]:
    csv = trivial_csv(points)
    clock = AnswerClock(env.kafka.bootstrap_servers)
    try:
        since_ms, prod = int(time.time() * 1000) - 1000, producer(env.kafka.bootstrap_servers)
        seconds, rids = via_topic(prod, clock, csv, 1)  # the cold one: not in the CPU per request
        cpu0 = cpu_total(env)
        warm, warm_rids = via_topic(prod, clock, csv, n - 1)
        topic_cpu = cpu_total(env) - cpu0
        seconds, rids = seconds + warm, rids + warm_rids
        # The clock's perf_counter arrivals as epoch ms, to compare with the records' Kafka timestamps.
        offset_ms = time.time() * 1000 - time.perf_counter() * 1000
        answered_ms = {rid: clock.at(rid) * 1000 + offset_ms for rid in rids}  # type: ignore[operator]
    finally:
        clock.close()
    rows = [row("configs topic → best-models", seconds, topic_cpu)]
    if gateway and env.gateway_url:
        first = via_gateway(env, csv, 1)
        cpu0 = cpu_total(env)
        warm = via_gateway(env, csv, gateway - 1)
        rows.append(row("gateway POST → SSE done", first + warm, cpu_total(env) - cpu0))
    if baseline:  # the same request answered in one process by the same core
        import baseline_http  # here: it imports this module's request

        rows.append(baseline_http.measure(baseline, points))
    per_hop = hops(env, rids[1:], since_ms, answered_ms)
    breakdown = {name: round(statistics.median(v), 1) for name, v in per_hop.items()}
    tails = {name: quantile_ms([x / 1000 for x in v], 0.9) for name, v in per_hop.items()}
    print_table(f"latency: 1 series × {points} points, naive, sequential (ms; percentiles without the first)", rows)
    print_table("latency, topic path: median ms per hop (Kafka record timestamps)",
                [{"hop": k, "median_ms": v, "p90_ms": tails[k]} for k, v in breakdown.items()])
    return {"points": points, "rows": rows, "hops_median_ms": breakdown, "hops_p90_ms": tails,
            "summary": {"latency_p50_ms": rows[0]["p50_ms"], "latency_p99_ms": rows[0]["p99_ms"],
                        "request_cpu_ms": rows[0]["cpu_ms_per_request"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--gateway-requests", type=int, default=200, help="0: the topic path only")
    parser.add_argument("--baseline-requests", type=int, default=200,
                        help="the in-process baseline's requests (bench/baseline_http.py); 0: none")
    parser.add_argument("--points", type=int, default=1000)
    args = parser.parse_args()
    with running(2, gateway=args.gateway_requests > 0) as env:
        out = measure(env, args.requests, args.points, args.gateway_requests, args.baseline_requests)
    save("latency", out)
    update_summary(out["summary"])


if __name__ == "__main__":
    main()
