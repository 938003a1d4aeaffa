"""Latency of trivial requests: `python bench/latency_probe.py [--requests 200] [--points 1000]`.

Starts the broker and the stream services (bench/scale_common.py), then sends `--requests` requests one after
the other straight to `configs` (1 series of `--points` monthly points uploaded inline, model `naive`) and
times each from the submit call to its best-models record on a consumer already tailing that topic. Prints
one JSON line: p50/p90/p99/max in ms (after `--warm` requests not counted) and the core alone on the same
config in the same run (issue 15's target: p50 ≤ 20 ms, p99 ≤ 80 ms).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from confluent_kafka import OFFSET_END, TopicPartition
from scale_common import core_seconds, print_json, running

from schemas import BY_NAME, CATALOGUE
from schemas.topics import BEST_MODELS, FAILURES
from timex_stream.runtime.history import read_range
from timex_stream.runtime.kafka import consumer, producer
from timex_stream.runtime.submit import submit
from timex_stream.tools.broker import EmbeddedKafka


def csv_of(points: int) -> bytes:
    values = 100 + np.cumsum(np.random.default_rng(1).normal(0, 1, points))
    frame = pd.DataFrame({"month": pd.date_range("1900-01-01", periods=points, freq="MS").strftime("%Y-%m-%d"),
                          "value": values.round(3)})
    return frame.to_csv(index=False).encode()


CONFIG = {"activity_title": "latency", "input_parameters": {"source_data_url": "upload:probe.csv",
                                                            "index_column_name": "month", "frequency": "MS"},
          "model_parameters": {"models": "naive", "main_accuracy_estimator": "mae"}}


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


def hops(bootstrap: str, start_ms: int) -> list[str]:
    """Every record produced since `start_ms`, in time order: where a request spends its time."""
    seen = [(m.timestamp()[1] - start_ms, topic.name, m.partition()) for topic in CATALOGUE
            for m in read_range(bootstrap, topic.name, start_ms)]
    return [f"{ms} {name}[{p}]" for ms, name, p in sorted(seen)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--trace", action="store_true", help="also print the hops of the last request")
    args = parser.parse_args()
    csv = csv_of(args.points)
    # A shared, loaded machine can take more than the default 90 s to start a broker.
    EmbeddedKafka.start.__defaults__ = (600.0,)
    core = [core_seconds(CONFIG, csv, 1)[0] for _ in range(5)]

    with running(args.concurrency) as env:
        bootstrap = env.kafka.bootstrap_servers
        prod = producer(bootstrap, **{"linger.ms": 0})
        # The default fetch wait: the broker answers as soon as a record lands (fetch.min.bytes 1); 5 ms only
        # sent 200 empty fetches a second, CPU taken from the services on a 2-core machine.
        cons = consumer(bootstrap, f"latency-probe-{os.getpid()}")
        cons.assign([TopicPartition(t.name, p, OFFSET_END) for t in (BEST_MODELS, FAILURES)
                     for p in range(BY_NAME[t.name].partitions)])
        times: list[float] = []
        for i in range(args.warm + args.requests):
            t0, start_ms = time.perf_counter(), int(time.time() * 1000)
            rid = submit(prod, CONFIG, csv=csv, origin="bench")
            while True:
                msg = cons.poll(1.0)
                if time.perf_counter() - t0 > 120:
                    raise TimeoutError(f"no answer for {rid} within 120 s")
                if msg is None or msg.error() or msg.key() != rid.encode():
                    continue
                if msg.topic() == FAILURES.name:
                    raise RuntimeError(f"{rid} failed: {msg.value()!r}")
                break
            if i >= args.warm:
                times.append((time.perf_counter() - t0) * 1000)
        cons.close()
        del prod, cons
        if args.trace:
            print_json({"hops_ms": hops(bootstrap, start_ms)})
    print_json({"requests": len(times), "points": args.points, "p50_ms": percentile(times, 50),
                "p90_ms": percentile(times, 90), "p99_ms": percentile(times, 99), "max_ms": round(max(times), 1),
                "core_ms_median": round(float(np.median(core)) * 1000, 1),
                "load_avg": [round(x, 2) for x in os.getloadavg()]})


if __name__ == "__main__":
    main()
