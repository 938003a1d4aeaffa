"""Live forecasts under load: `python bench/live.py [--duration 10] [--points 150000] [--full]`.

1,000 live series: four standing requests of 250 series each, one model each (arima, autoets, theta, naive),
each following its own source topic (long JSON records keyed by the series name, daily points). The history
(`--history` points a series) is on the topics before the requests, so each series goes through the normal
selection with its one model and gets its first revision; that phase is set-up, not measured. Then, with the
live service's RSS noted:
- **steps**: for `--duration` s an open-loop producer sends observations at a fixed total rate, round robin
  over the 1,000 series, each record's Kafka timestamp set to its scheduled time (a producer that falls
  behind is charged for it). An observation's delay runs from that time to the Kafka timestamp of the first
  revision on `forecast-history` whose number includes it (revision = observations folded in, so the n-th
  observation of a series is in revisions ≥ n: `live_match.match`); this is when the live service wrote the
  revision, a reader gets it a few ms later. A rate passes when every observation is in a revision
  `GRACE_S` after the last was sent and the p99 is ≤ 1 s; a missed step's backlog is drained (at most
  `DRAIN_S`) before the next. Rates: 1,000/s (the figures at 1,000/s: `live_p50_ms`, `live_p99_ms`), doubled
  while it passes (halved while it misses), then one step between the highest pass and the lowest miss
  (`live_match.next_rate`); `live_max_rate` = the highest pass. Each step also gives each request's own p99
  (`p99_ms_by_model`: one model, one process each), which shows which one sets the tail.
- **CPU**: ms of CPU per observation of each process (each service, the live service's pool, the broker) at
  each rate (`live_cpu_ms_per_point`: the sum at the highest pass), beside what they spend idle.
- **drift** (`bench/live_drift.py`): after the steps, a fifth standing request of 20 series with four models,
  half of which change regime mid-stream, while the 1,000 series go on at the first rate (1,000/s: the rate of
  the issue's delay targets, p50 ≤ 50 ms and p99 ≤ 250 ms) if its step kept those targets, else at the highest
  rate whose step kept them (none: the highest pass, at most the first rate): points and
  seconds from the onset to the switching revision, the CPU of one re-selection, and the 1,000 series'
  delays meanwhile (`targets_kept`).
- **memory**: after the steps, observations at the highest passing rate, at least 2,000/s (folded into fewer
  revisions where the service holds less) and at most 5,000/s, until `--points` were sent in all;
  `live_rss_growth` = the live service's RSS after ÷ before − 1 (every service's RSS is printed). The windows
  are `--window-points` long (default 10,000, more than a series gets here: they grow by about 250 bytes a
  point kept).

The issue's protocol is `--full`: 60 s per rate and 1,000,000 observations. The default (10 s per rate,
150,000 observations) keeps the bench at about 4 minutes on a quiet machine. The machine's load average is
recorded with every step. Writes bench/results/live.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import live_drift
import numpy as np
import pandas as pd
import psutil
from confluent_kafka import OFFSET_END, TopicPartition
from confluent_kafka.admin import NewTopic
from live_match import match, next_rate, p99_by_group, quantile, revision_number
from scale_common import Running, print_table, running, save, update_summary

from schemas import decode_as
from schemas.keys import split_series_key
from schemas.topics import FAILURES, FORECAST_HISTORY, STANDING
from timex_stream.runtime.kafka import admin, consumer, producer
from timex_stream.runtime.submit import new_request_id, submit
from timex_stream.tools.stack import wait_for_members

MODELS = ("arima", "autoets", "theta", "naive")
SERIES_PER_REQUEST = 250
# Live service processes: one per standing request here. A request's series stay in one process (live/shards.py),
# and two requests in one process take turns on its event loop a revise pass at a time, where the OS interleaves
# processes finely: on this 2-core machine 5,000/s kept p99 856 ms with four, 4,000/s missed (1.12 s) with two
# (steps of 10-15 s; README "Live with four processes").
LIVE_INSTANCES = 4
P99_LIMIT_MS = 1000.0
DELAY_TARGETS_MS = (50.0, 250.0)  # the p50 and p99 at 1,000/s
GRACE_S = 5.0
DRAIN_S = 60.0
IDLE_S = 5.0
START = pd.Timestamp("2020-01-01")
DAY_NS = 86_400 * 10**9


class Stream:
    """The 1,000 series: their source topics, how many points each has had, and the value of its next point
    (a weekly pattern, a trend and noise)."""

    def __init__(self, history: int, seed: int = 7, per_request: int = SERIES_PER_REQUEST) -> None:
        self.topics = {model: f"live-bench-{model}-{os.getpid()}" for model in MODELS}
        self.series = [(self.topics[model], f"{model}-{i:03d}") for model in MODELS
                       for i in range(per_request)]
        self.sent = [0] * len(self.series)  # points produced per series (its next point's day)
        rng = np.random.default_rng(seed)
        self.level = rng.uniform(50, 150, len(self.series))
        self.noise = rng.normal(0, 1, 4096)
        self.history = history
        self.next = 0  # round robin

    def record(self, i: int) -> tuple[str, bytes, bytes, int]:
        """Series i's next point: (topic, key, value, its ordinal n, 1-based)."""
        day = self.sent[i]
        self.sent[i] += 1
        stamp = (START + pd.Timedelta(days=day)).strftime("%Y-%m-%d")
        value = self.level[i] + 5 * ((day % 7) - 3) + 0.05 * day + self.noise[(i * 31 + day) % 4096]
        topic, name = self.series[i]
        return topic, name.encode(), f'{{"timestamp":"{stamp}","value":{value:.3f}}}'.encode(), day + 1


def config(topic: str, model: str, history: int, window_points: int) -> dict[str, Any]:
    return {"activity_title": f"live bench {model}",
            "input_parameters": {"source_topic": topic, "index_column_name": "date", "frequency": "D",
                                 "live_parameters": {"start_from": "earliest", "min_points": history - 1,
                                                     "record_format": "long", "window_points": window_points}},
            "model_parameters": {"models": model, "possible_transformations": "none",
                                 "main_accuracy_estimator": "mae", "test_values": 7,
                                 "delta_training_percentage": 100, "prediction_lags": 7}}


def rss_mb(env: Running) -> dict[str, float]:
    """Resident memory of each service process and, apart, of its pool workers (MB)."""
    out: dict[str, float] = {}
    for name, proc in env.stack.children.items():
        try:
            p = psutil.Process(proc.pid)
            out[name] = round(p.memory_info().rss / 2**20, 1)
            kids = p.children(recursive=True)
            if kids:
                out[f"{name} workers"] = round(sum(k.memory_info().rss for k in kids) / 2**20, 1)
        except psutil.NoSuchProcess:
            continue
    return out


class Revisions:
    """The revisions written since the bench began, read from `forecast-history` as they come (its records'
    Kafka timestamps are their write times): per series, (revision, write ms) in order; and the requests'
    failures."""

    TOPICS = (FORECAST_HISTORY.name, FAILURES.name)

    def __init__(self, bootstrap: str, rids: set[str], since_ms: int) -> None:
        self.rids = rids
        self.by_series: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.failures: list[str] = []
        self.cons = consumer(bootstrap, f"timex-bench-live-{os.getpid()}")
        wanted = [TopicPartition(t, p, since_ms) for t in self.TOPICS
                  for p in self.cons.list_topics(t, timeout=10).topics[t].partitions]
        found = self.cons.offsets_for_times(wanted, timeout=10)
        self.cons.assign([TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                          for tp in found])

    def read(self) -> None:
        """Every record written until now."""
        ends = {}
        for tp in self.cons.assignment():
            ends[(tp.topic, tp.partition)] = self.cons.get_watermark_offsets(tp, timeout=10)[1]
        while True:
            positions = {(tp.topic, tp.partition): tp.offset for tp in self.cons.position(self.cons.assignment())}
            if all(positions[tp] >= end or (positions[tp] < 0 and end == 0) for tp, end in ends.items()):
                return
            for msg in self.cons.consume(2000, 0.2):
                if msg.error() is not None:
                    continue
                key = (msg.key() or b"").decode()
                if msg.topic() == FAILURES.name:
                    if key in self.rids:
                        self.failures.append(decode_as("Failure", msg.value())["message"])
                    continue
                rid, series = split_series_key(key)
                if rid not in self.rids:
                    continue
                number = revision_number(msg.value())
                rows = self.by_series[series]
                if not rows or number > rows[-1][0]:
                    rows.append((number, msg.timestamp()[1]))

    def covered(self, wanted: dict[str, int]) -> bool:
        """True when each series has a revision numbered at least `wanted[series]`."""
        return all(self.by_series.get(s) and self.by_series[s][-1][0] >= n for s, n in wanted.items())

    def close(self) -> None:
        self.cons.close()


def wait_covered(revisions: Revisions, wanted: dict[str, int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        revisions.read()
        if revisions.covered(wanted):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


def produce_at(env: Running, stream: Stream, rate: float, count: int) -> dict[str, list[tuple[int, float]]]:
    """`count` observations at `rate` a second (open loop); → per series (ordinal, scheduled epoch ms)."""
    prod = producer(env.kafka.bootstrap_servers, **{"linger.ms": 2, "queue.buffering.max.messages": 1_000_000})
    sent: dict[str, list[tuple[int, float]]] = defaultdict(list)
    start = time.time() + 0.2
    i = 0
    while i < count:
        now = time.time()
        due = min(count, int((now - start) * rate) + 1)
        if due <= i:
            prod.poll(min(0.005, max(0.0, start + i / rate - now)))
            continue
        for j in range(i, due):
            at_ms = 1000 * (start + j / rate)
            k = stream.next
            stream.next = (k + 1) % len(stream.series)
            topic, key, value, n = stream.record(k)
            prod.produce(topic, value, key, timestamp=int(at_ms))
            sent[stream.series[k][1]].append((n, at_ms))
        prod.poll(0)
        i = due
    if prod.flush(60) != 0:
        raise RuntimeError("the broker did not take every observation within 60 s")
    return sent


def step(env: Running, stream: Stream, revisions: Revisions, rate: float, duration: float) -> dict[str, Any]:
    load = os.getloadavg()[0]
    cpu_before = env.cpu_seconds()
    revised_before = sum(len(rows) for rows in revisions.by_series.values())
    count = max(1, round(rate * duration))
    t0 = time.monotonic()
    sent = produce_at(env, stream, rate, count)
    produced_s = time.monotonic() - t0
    wanted = {s: rows[-1][0] for s, rows in sent.items()}
    caught_up = wait_covered(revisions, wanted, GRACE_S)
    cpu = {name: s - cpu_before.get(name, 0.0) for name, s in env.cpu_seconds().items()}
    late = 0 if caught_up else sum(1 for s, rows in sent.items() for n, _ in rows
                                   if not revisions.by_series.get(s) or revisions.by_series[s][-1][0] < n)
    if not caught_up:
        wait_covered(revisions, wanted, DRAIN_S)  # the backlog, before the next step
    revised = sum(len(rows) for rows in revisions.by_series.values()) - revised_before
    matched = match(sent, revisions.by_series)
    p50, p99 = quantile(matched.delays_ms, 0.5), quantile(matched.delays_ms, 0.99)
    by_model = p99_by_group(sent, revisions.by_series, lambda series: series.rsplit("-", 1)[0])
    passed = caught_up and matched.lost == 0 and p99 is not None and p99 <= P99_LIMIT_MS
    return {"rate": round(rate), "sent": count, "send_s": round(produced_s, 1), "late": late,
            "lost": matched.lost, "p50_ms": _ms(p50), "p90_ms": _ms(quantile(matched.delays_ms, 0.9)),
            "p99_ms": _ms(p99), "max_ms": _ms(max(matched.delays_ms, default=None)), "pass": passed,
            # each request's own p99 (one model, one process each): which one sets the tail
            "p99_ms_by_model": {model: _ms(value) for model, value in by_model.items()},
            "load_avg_1m": round(load, 2),
            # observations per revision: under load several fold into one, and the CPU per observation falls
            "folded": round(count / revised, 2) if revised else None,
            "cpu_ms_per_point": {name: round(1000 * s / count, 3) for name, s in cpu.items()}}


def _row(step: dict[str, Any]) -> dict[str, Any]:
    """A step as a table row: its figures, each model's p99 a column, the CPU in a table of its own."""
    row = {k: v for k, v in step.items() if k not in ("cpu_ms_per_point", "p99_ms_by_model")}
    return row | {f"p99 {model}": v for model, v in step.get("p99_ms_by_model", {}).items()}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def idle_cpu(env: Running, seconds: float = IDLE_S) -> dict[str, float]:
    before = env.cpu_seconds()
    time.sleep(seconds)
    return {name: round(1000 * (v - before.get(name, 0.0)) / seconds, 1) for name, v in env.cpu_seconds().items()}


def _load(name: str, path: Path) -> Any:
    """A module by its path: this script is `live` on bench/'s path, so the live service's package is not `live`."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def spread_ids(n: int) -> list[str]:
    """`n` request ids on distinct partitions of `standing` (while there are enough): the instances, which share
    the partitions evenly, then follow as many requests each. A request's series stay in one process
    (live/shards.py), so with random ids the four requests split 4 + 0 over two instances one run in eight and 3 + 1
    one in two, and the figures measured the hashing's luck."""
    shards = _load("live_shards", Path(__file__).resolve().parent.parent / "live" / "shards.py")
    partition_of = shards.partition_of
    ids: list[str] = []
    while len(ids) < n:
        rid = new_request_id()
        taken = {partition_of(i) for i in ids}
        if partition_of(rid) not in taken or len(taken) >= STANDING.partitions:
            ids.append(rid)
    return ids


def set_up(env: Running, stream: Stream, window_points: int, timeout: float, instances: int = 1
           ) -> tuple[Revisions, float]:
    """The live service, the source topics with each series' history, the four standing requests, and every
    series' first revision; → the revisions reader and the seconds it took."""
    t0 = time.monotonic()
    if "live" not in env.stack.children:
        for i in range(1, instances + 1):
            env.stack.launch("live", instance="live" if i == 1 else f"live-{i}")
        wait_for_members(env.kafka.bootstrap_servers, "timex-live", STANDING.name, instances)
    client = admin(env.kafka.bootstrap_servers)
    futures = client.create_topics([NewTopic(t, 1, 1) for t in stream.topics.values()])
    for f in futures.values():
        f.result(30)
    prod = producer(env.kafka.bootstrap_servers)
    for _ in range(stream.history):
        for i in range(len(stream.series)):
            topic, key, value, _n = stream.record(i)
            prod.produce(topic, value, key)
        prod.poll(0)
    prod.flush(60)
    since = int(time.time() * 1000) - 1000
    ids = spread_ids(len(MODELS)) if instances > 1 else [new_request_id() for _ in MODELS]
    rids = {submit(prod, config(stream.topics[m], m, stream.history, window_points), origin="bench", request_id=rid)
            for m, rid in zip(MODELS, ids, strict=True)}
    revisions = Revisions(env.kafka.bootstrap_servers, rids, since)
    wanted = {name: stream.history for _, name in stream.series}
    if not wait_covered(revisions, wanted, timeout):
        revisions.close()
        missing = sum(1 for s, n in wanted.items() if not revisions.by_series.get(s))
        raise TimeoutError(f"{missing} of {len(wanted)} series had no first revision after {timeout:.0f} s; "
                           f"failures: {revisions.failures[:3]}")
    return revisions, time.monotonic() - t0


def measure(env: Running, duration: float = 10.0, points: int = 150_000, start: float = 1000.0,
            ceiling: float = 16_000.0, history: int = 30, window_points: int = 10_000,
            setup_timeout: float = 1800.0, per_request: int = SERIES_PER_REQUEST, instances: int = LIVE_INSTANCES
            ) -> dict[str, Any]:
    stream = Stream(history, per_request=per_request)
    launched = "live" not in env.stack.children
    try:
        revisions, setup_s = set_up(env, stream, window_points, setup_timeout, instances)
        try:
            return _measured(env, stream, revisions, setup_s, duration, points, start, ceiling)
        finally:
            revisions.close()
    finally:
        if launched:  # the benches after this one measure without it
            for name in [n for n in env.stack.children if n == "live" or n.startswith("live-")]:
                proc = env.stack.children.pop(name)
                proc.terminate()
                proc.wait(60)


def _measured(env: Running, stream: Stream, revisions: Revisions, setup_s: float, duration: float, points: int,
              start: float, ceiling: float) -> dict[str, Any]:
    print(f"live: {len(stream.series):,} series selected and revised in {setup_s:.0f} s (load average "
          f"{os.getloadavg()[0]:.1f})", flush=True)
    time.sleep(2)
    idle = idle_cpu(env)
    rss_before = rss_mb(env)
    steps: list[dict[str, Any]] = []
    rate: float | None = start
    while rate is not None:
        steps.append(step(env, stream, revisions, rate, duration))
        print_table("live step", [_row(steps[-1])])
        rate = next_rate([(s["rate"], s["pass"]) for s in steps], ceiling, floor=100)
    passes = [s for s in steps if s["pass"]]
    best = max(passes, key=lambda s: s["rate"]) if passes else None
    # Drift onset → switching revision, and one re-selection's CPU, with the stream going on at the rate the delay
    # targets are for (the first, 1,000/s) if its step kept them (p50 ≤ 50 ms, p99 ≤ 250 ms), else at the highest
    # rate that kept them, else at the highest pass (at most the first rate)
    kept = [s for s in passes if s["p50_ms"] <= DELAY_TARGETS_MS[0] and s["p99_ms"] <= DELAY_TARGETS_MS[1]]
    background = (start if any(s["rate"] == start for s in kept) else max(s["rate"] for s in kept) if kept
                  else min(best["rate"], start) if best else 0.0)
    rss_before_drift = rss_mb(env)
    drift = live_drift.measure(env, background=stream, rate=background, background_revisions=revisions)
    drift["rss_mb"] = {"before": rss_before_drift, "after": rss_mb(env)}  # its fifth request loads one process
    if drift.get("background"):
        back = drift["background"]
        drift["background"]["targets_kept"] = (back["lost"] == 0 and back["p50_ms"] is not None
                                                and back["p50_ms"] <= DELAY_TARGETS_MS[0]
                                                and back["p99_ms"] <= DELAY_TARGETS_MS[1])
    total = sum(s["sent"] for s in steps) + (drift.get("background") or {}).get("sent", 0)
    soak: dict[str, Any] | None = None
    if total < points:  # the rest of --points at a rate the service holds, in steps of at most 60 s
        # Memory wants observations, not a latency: at least 2,000/s (folded into fewer revisions if the
        # service holds less with p99 ≤ 1 s), so that the default run stays within its minutes.
        soak_rate = min(5000.0, max(2000.0, best["rate"] if best else 0.0))
        soak = {"rate": soak_rate, "sent": 0, "lost": 0, "p99_ms_max": None}
        while total < points:
            chunk = min(points - total, int(soak_rate * 60))
            s = step(env, stream, revisions, soak_rate, chunk / soak_rate)
            total += s["sent"]
            soak["sent"] += s["sent"]
            soak["lost"] += s["lost"]
            soak["p99_ms_max"] = max(soak["p99_ms_max"] or 0.0, s["p99_ms"] or 0.0)
        print(f"live: memory soak, {soak['sent']:,} more observations at {soak_rate:g}/s", flush=True)
    time.sleep(2)
    rss_after = rss_mb(env)
    first = steps[0]
    growth = round(rss_after["live"] / rss_before["live"] - 1, 3) if "live" in rss_before else None
    cpu_best = best["cpu_ms_per_point"] if best else None
    out = {
        "series": len(stream.series), "models": MODELS, "history": stream.history, "duration_s": duration,
        "setup_s": round(setup_s, 1), "steps": steps, "idle_cpu_ms_per_s": idle, "drift": drift, "soak": soak,
        "observations": total, "rss_mb_before": rss_before, "rss_mb_after": rss_after,
        "summary": {"live_p50_ms": first["p50_ms"] if first["rate"] == start else None,
                    "live_p99_ms": first["p99_ms"] if first["rate"] == start else None,
                    "live_max_rate": best["rate"] if best else 0,
                    "live_cpu_ms_per_point": round(sum(cpu_best.values()), 3) if cpu_best else None,
                    "live_rss_growth": growth},
    }
    print_table(f"live: {len(stream.series):,} series ({', '.join(MODELS)}), {duration:g} s per rate, pass = all "
                f"revised and p99 ≤ 1 s (delay: produce time → the revision that includes it)",
                [_row(s) for s in steps])
    print_table("live: CPU ms per observation of each process (idle: ms per second)",
                [{"rate": "idle (ms/s)", **idle}] + [{"rate": s["rate"], **s["cpu_ms_per_point"],
                                                      "total": round(sum(s["cpu_ms_per_point"].values()), 3)}
                                                     for s in steps])
    print_table(f"live: RSS (MB) before and after {total:,} observations",
                [{"process": k, "before": rss_before.get(k), "after": v} for k, v in rss_after.items()])
    print(json.dumps(out["summary"]), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate (the issue: 60)")
    parser.add_argument("--points", type=int, default=150_000, help="observations in all (the issue: 1,000,000)")
    parser.add_argument("--start", type=float, default=1000.0, help="first rate, observations/s")
    parser.add_argument("--max", type=float, default=16_000.0, help="highest rate tried")
    parser.add_argument("--history", type=int, default=30, help="points per series before the requests")
    parser.add_argument("--window-points", type=int, default=10_000, help="live_parameters.window_points")
    parser.add_argument("--series", type=int, default=SERIES_PER_REQUEST,
                        help="series per request (four requests; the issue: 250): fewer for a quick CPU profile")
    parser.add_argument("--live-instances", type=int, default=LIVE_INSTANCES,
                        help="live service processes (they share the standing requests: live/shards.py)")
    parser.add_argument("--full", action="store_true", help="the issue's protocol: 60 s per rate, 1 M points")
    args = parser.parse_args()
    if args.full:
        args.duration, args.points = 60.0, 1_000_000
    with running(2) as env:
        out = measure(env, args.duration, args.points, args.start, args.max, args.history, args.window_points,
                      per_request=args.series, instances=args.live_instances)
    save("live", out)
    update_summary(out["summary"])


if __name__ == "__main__":
    main()
