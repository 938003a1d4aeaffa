"""What one trivial request costs: `python bench/request_cost.py [--requests 100] [--warm 5]`.

The trivial request of bench/latency.py (1 series × 1,000 points inline, model naive) sent `--requests` times
one after the other (each waits for its answer) to `configs` on the embedded broker with the services of
`make up` (gateway included: it tails the answer topics). Prints, per request:
- CPU ms of each process (services, the predictor's pool workers, the broker): `raw` is all the CPU the run
  took ÷ requests; `net` takes away what the process spends idle (measured for a few seconds before, with no
  request), which is what a request adds when requests come often;
- the broker's requests by type (its JMX counters: Produce, Fetch, OffsetCommit, Heartbeat, ...), so empty
  fetches and per-record round trips show;
- records written per topic (end offsets before and after, internal topics included: changelogs,
  `__consumer_offsets`).
CPU-seconds are process CPU time: meaningful on a loaded machine, unlike wall times. Writes
bench/results/request_cost.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from latency import trivial_csv, via_topic
from scale_common import AnswerClock, Running, print_table, running, save

from timex_stream.runtime.kafka import admin, consumer, producer
from timex_stream.runtime.ports import free_port

HERE = Path(__file__).resolve().parent
IDLE_S = 5.0
# The broker counts each fetch twice: under Fetch and under FetchConsumer (or FetchFollower).
PARTS = ("FetchConsumer", "FetchFollower")
WARM = 5  # `--warm`: the broker's JIT and the services' first-call costs settle over hundreds of requests


def broker_requests(jmx: str) -> Counter[str]:
    """The broker's request counts by type, summed over versions."""
    env = {k: v for k, v in os.environ.items() if k != "JAVA_TOOL_OPTIONS"}
    out = subprocess.run(["java", str(HERE / "BrokerRequests.java"), jmx], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout
    counts: Counter[str] = Counter()
    for line in out.splitlines():
        name, value = line.rsplit(" ", 1)
        counts[name] += int(float(value))
    return counts


def records(bootstrap: str) -> Counter[str]:
    """Each topic's records so far (sum of its partitions' end offsets)."""
    topics = admin(bootstrap).list_topics(timeout=10).topics
    cons = consumer(bootstrap, "timex-bench-offsets")
    from confluent_kafka import TopicPartition
    out: Counter[str] = Counter()
    try:
        for name, meta in topics.items():
            for p in meta.partitions:
                out[name] += cons.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
    finally:
        cons.close()
    return out


def per_request(after: dict[str, float], before: dict[str, float], n: int) -> dict[str, float]:
    return {k: round(1000 * (v - before.get(k, 0.0)) / n, 2) for k, v in after.items()}


def measure(env: Running, jmx: str, n: int, warm: int = WARM) -> dict[str, Any]:
    csv, bootstrap = trivial_csv(), env.kafka.bootstrap_servers
    clock, prod = AnswerClock(bootstrap), producer(bootstrap)
    try:
        via_topic(prod, clock, csv, warm)  # the first requests warm every process up
        time.sleep(2)
        idle0 = env.cpu_seconds()
        time.sleep(IDLE_S)
        idle = per_request(env.cpu_seconds(), idle0, 1)  # ms over IDLE_S: divided below
        idle = {k: round(v / IDLE_S, 2) for k, v in idle.items()}
        rec0, req0, cpu0, t0 = records(bootstrap), broker_requests(jmx), env.cpu_seconds(), time.monotonic()
        seconds, _ = via_topic(prod, clock, csv, n)
        cpu1, wall = env.cpu_seconds(), time.monotonic() - t0
        time.sleep(1.5)  # what the last request's checkpoints write
        req1, rec1 = broker_requests(jmx), records(bootstrap)
    finally:
        clock.close()
    raw = per_request(cpu1, cpu0, n)
    net = {k: round(v - idle.get(k, 0.0) * wall / n, 2) for k, v in raw.items()}
    cpu_rows = [{"process": k, "raw_ms": raw[k], "idle_ms_per_s": idle.get(k), "net_ms": net[k]} for k in raw]
    cpu_rows.append({"process": "total", "raw_ms": round(sum(raw.values()), 1),
                     "idle_ms_per_s": round(sum(idle.values()), 1), "net_ms": round(sum(net.values()), 1)})
    reqs = {k: round((req1[k] - req0.get(k, 0)) / n, 2) for k in req1 if req1[k] != req0.get(k, 0)}
    recs = {k: round((rec1[k] - rec0.get(k, 0)) / n, 2) for k in rec1 if rec1[k] != rec0.get(k, 0)}
    print_table(f"CPU ms per trivial request ({n} sequential after {warm}, {wall / n * 1000:.0f} ms each on average; "
                f"load average {os.getloadavg()[0]:.1f})", cpu_rows)
    print_table("broker requests per trivial request (all clients, the bench's own included)",
                [{"request": k, "per_request": v} for k, v in sorted(reqs.items(), key=lambda kv: -kv[1])]
                + [{"request": "total", "per_request": round(sum(v for k, v in reqs.items() if k not in PARTS), 1)}])
    print_table("records written per trivial request, by topic",
                [{"topic": k, "per_request": v} for k, v in sorted(recs.items())])
    return {"requests": n, "warm": warm, "wall_s": round(wall, 2), "cpu_ms": cpu_rows, "broker_requests": reqs,
            "records": recs, "p50_ms": round(1000 * sorted(seconds)[len(seconds) // 2], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warm", type=int, default=WARM, help="requests sent first, not measured")
    args = parser.parse_args()
    port = free_port()
    # The broker's JMX on loopback, for its request counters (the services' JVM-less clients ignore this).
    os.environ["JAVA_TOOL_OPTIONS"] = (f"-Dcom.sun.management.jmxremote.port={port} "
                                       f"-Dcom.sun.management.jmxremote.rmi.port={port} "
                                       "-Dcom.sun.management.jmxremote.authenticate=false "
                                       "-Dcom.sun.management.jmxremote.ssl=false "
                                       "-Djava.rmi.server.hostname=127.0.0.1")
    with running(2, gateway=True) as env:
        os.environ.pop("JAVA_TOOL_OPTIONS")
        out = measure(env, f"127.0.0.1:{port}", args.requests, args.warm)
    save("request_cost", out)


if __name__ == "__main__":
    main()
