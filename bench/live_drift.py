"""Re-selection on drift, live: `python bench/live_drift.py [--series 20] [--shifted 10] [--pace 5]`.

One standing request of `--series` daily series on a source topic of its own (long JSON records keyed by the
series name), models `--models` (default naive, seasonal_naive, autoets, theta), `--history` points each
before the request (the last one provisional, so `min_points` is one less; its first selection is set-up,
not measured). Then every series gets one point per
1/`--pace` s; at day `onset` (`--history` + `--before` points) the first `--shifted` series change regime
(a level jump of 60 and a trend of 3 a day over a weekly pattern of amplitude 10, noise 1), the others go on
unchanged. Printed, per shifted series and summed up:
- **onset → switch**: points from the onset on (the switch's `triggered_at` minus the points before the onset) and
  seconds (the onset point's produce time → the Kafka timestamp of the first revision on `forecast-history`
  carrying the switch), the model before and after, and the errors the re-selection compared;
- **CPU of one re-selection**: the CPU the ingestion, the predictor (its pool workers included) and the
  validator spent over the phase, divided by the re-selections they answered: in this bench nothing else
  reaches them, the per-point work of the stream is the live service's (shown apart, per point);
- whether each shifted series' rolling error is back under its threshold at the last point, and the false
  alarms: switches of a steady series, or of a shifted one before its onset (noise passing the threshold).
`bench/live.py` runs it after its rate steps with its 1,000-series stream going on at a rate it held, and
then also prints that stream's delays while the re-selections ran (`measure(..., background=...)`): the
issue's "while the 1,000-series stream keeps its delay targets". Writes bench/results/live_drift.json alone.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd
from confluent_kafka import OFFSET_END, TopicPartition
from confluent_kafka.admin import NewTopic
from live_match import match, quantile
from scale_common import Running, print_table, running, save

from schemas import decode_as
from schemas.keys import reselection_of, split_series_key
from schemas.topics import BEST_MODELS, FAILURES, FORECAST_HISTORY, STANDING
from timex_stream.runtime.kafka import admin, consumer, producer
from timex_stream.runtime.submit import submit
from timex_stream.tools.stack import wait_for_members

START = pd.Timestamp("2024-01-01")
PATTERN = (0.0, 4.0, 8.0, 10.0, 6.0, 2.0, -3.0)
JUMP, TREND = 60.0, 3.0
PATIENCE, WINDOW = 6, 10
# Services that take part in a re-selection and in nothing else of this bench (the stream is the live service's)
SELECTION = ("ingestion", "predictor", "predictor workers", "validator")


class Background(Protocol):
    """bench/live.py's 1,000-series stream: round robin over `series`, `record(i)` its next point."""

    series: list[tuple[str, str]]
    next: int

    def record(self, i: int) -> tuple[str, bytes, bytes, int]: ...


class Drifting:
    """The request's series: day d's value of series i; the first `shifted` jump at `onset`."""

    def __init__(self, series: int, shifted: int, onset: int, seed: int = 11) -> None:
        self.names = [f"{'shift' if i < shifted else 'steady'}-{i:02d}" for i in range(series)]
        self.shifted, self.onset = shifted, onset
        rng = np.random.default_rng(seed)
        self.level = rng.uniform(80, 120, series)
        self.noise = rng.normal(0, 1, (series, 4096))

    def value(self, i: int, day: int) -> float:
        base = self.level[i] + PATTERN[day % 7] + self.noise[i, day % 4096]
        return base + (JUMP + TREND * (day - self.onset) if i < self.shifted and day >= self.onset else 0.0)

    def record(self, i: int, day: int) -> tuple[bytes, bytes]:
        stamp = (START + pd.Timedelta(days=day)).strftime("%Y-%m-%d")
        return self.names[i].encode(), f'{{"timestamp":"{stamp}","value":{self.value(i, day):.3f}}}'.encode()


def config(topic: str, models: str, history: int) -> dict[str, Any]:
    return {"activity_title": "live drift bench",
            "input_parameters": {"source_topic": topic, "index_column_name": "date", "frequency": "D",
                                 "live_parameters": {"start_from": "earliest", "min_points": history - 1,
                                                     "record_format": "long", "accuracy_window": WINDOW,
                                                     "reselect_patience": PATIENCE, "reselect_factor": 1.5}},
            "model_parameters": {"models": models, "possible_transformations": "none",
                                 "main_accuracy_estimator": "mae", "test_values": 7,
                                 "delta_training_percentage": 100, "prediction_lags": 7}}


class Seen:
    """This request's revisions on `forecast-history` (per series: number, write ms, model, switch) and the
    re-selections answered on `best-models`, read from `since_ms` on."""

    def __init__(self, bootstrap: str, rid: str, since_ms: int) -> None:
        self.rid = rid
        self.revisions: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.reselections = 0
        self.failures: list[str] = []
        self.cons = consumer(bootstrap, f"timex-bench-drift-{uuid.uuid4().hex[:8]}")
        wanted = [TopicPartition(t, p, since_ms) for t in (FORECAST_HISTORY.name, BEST_MODELS.name, FAILURES.name)
                  for p in self.cons.list_topics(t, timeout=10).topics[t].partitions]
        found = self.cons.offsets_for_times(wanted, timeout=10)
        self.cons.assign([TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                          for tp in found])

    def read(self, seconds: float = 0.2) -> None:
        for msg in self.cons.consume(5000, seconds):
            if msg.error() is not None:
                continue
            key = (msg.key() or b"").decode()
            if msg.topic() == FAILURES.name:
                if key == self.rid:
                    self.failures.append(decode_as("Failure", msg.value())["message"])
                continue
            if msg.topic() == BEST_MODELS.name:
                parent = reselection_of(key)
                self.reselections += parent is not None and parent[0] == self.rid
                continue
            rid, series = split_series_key(key)
            if rid == self.rid:
                rev = decode_as("ForecastRevision", msg.value())
                acc = rev["accuracy"] or {}
                self.revisions[series].append({"revision": rev["revision"], "at_ms": msg.timestamp()[1],
                                               "model": rev["model"], "switched": rev["switched"],
                                               "error": acc.get("error"), "threshold": acc.get("threshold")})

    def reached(self, names: list[str], number: int) -> bool:
        return all(self.revisions.get(n) and max(r["revision"] for r in self.revisions[n]) >= number
                   for n in names)

    def switches(self, name: str) -> list[dict[str, Any]]:
        """The first revision of each switch of `name`'s model, in order."""
        out: list[dict[str, Any]] = []
        for r in self.revisions.get(name, ()):
            if r["switched"] is not None and (not out or r["switched"] != out[-1]["switched"]):
                out.append(r)
        return out

    def close(self) -> None:
        self.cons.close()


def wait(seen: Seen, done: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"live drift bench: {what} not within {seconds:.0f} s; failures: {seen.failures[:3]}")
        seen.read()


def set_up(env: Running, drifting: Drifting, models: str, history: int, timeout: float) -> tuple[str, str, Seen]:
    """The live service, the source topic with `history` points a series, the request, its first revisions."""
    if "live" not in env.stack.children:
        env.stack.launch("live")
        wait_for_members(env.kafka.bootstrap_servers, "timex-live", STANDING.name, 1)
    topic = f"live-drift-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    client = admin(env.kafka.bootstrap_servers)  # held until the topic exists: its destruction fails the future
    client.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    prod = producer(env.kafka.bootstrap_servers)
    for day in range(history):
        for i in range(len(drifting.names)):
            key, value = drifting.record(i, day)
            prod.produce(topic, value, key)
    prod.flush(60)
    since = int(time.time() * 1000) - 1000
    rid = submit(prod, config(topic, models, history), origin="bench")
    seen = Seen(env.kafka.bootstrap_servers, rid, since)
    wait(seen, lambda: seen.reached(drifting.names, history), timeout, "the first revision of every series")
    return topic, rid, seen


def stream(env: Running, topic: str, drifting: Drifting, first_day: int, last_day: int, pace: float,
           background: Background | None, rate: float) -> tuple[float, dict[str, list[tuple[int, float]]]]:
    """Days first_day..last_day of every series, a day each 1/pace s, and beside them (open loop) `rate`
    background observations a second; → the onset day's produce time (epoch ms) and the background's
    (ordinal, scheduled ms) per series."""
    prod = producer(env.kafka.bootstrap_servers, **{"linger.ms": 2, "queue.buffering.max.messages": 1_000_000})
    sent: dict[str, list[tuple[int, float]]] = defaultdict(list)
    start = time.time() + 0.2
    onset_ms = 0.0
    day, done = first_day, 0
    while day <= last_day:
        now = time.time()
        if background is not None and rate > 0:
            due = int((now - start) * rate) + 1
            for j in range(done, due):
                k = background.next
                background.next = (k + 1) % len(background.series)
                btopic, key, value, n = background.record(k)
                at_ms = 1000 * (start + j / rate)
                prod.produce(btopic, value, key, timestamp=int(at_ms))
                sent[background.series[k][1]].append((n, at_ms))
            done = max(done, due)
        if now >= start + (day - first_day) / pace:
            at_ms = 1000 * (start + (day - first_day) / pace)
            onset_ms = at_ms if day == drifting.onset else onset_ms
            for i in range(len(drifting.names)):
                key, value = drifting.record(i, day)
                prod.produce(topic, value, key, timestamp=int(at_ms))
            day += 1
        prod.poll(0.001)
    if prod.flush(60) != 0:
        raise RuntimeError("the broker did not take every observation within 60 s")
    return onset_ms, sent


def measure(env: Running, series: int = 20, shifted: int = 10, history: int = 60, before: int = 10,
            after: int = 40, pace: float = 5.0, models: str = "naive,seasonal_naive,autoets,theta",
            background: Background | None = None, rate: float = 0.0,
            background_revisions: Any = None, timeout: float = 600.0) -> dict[str, Any]:
    """The drift phase on `env` (see the module doc); with `background` (and its `background_revisions`, a
    bench/live.py `Revisions`), that stream at `rate` too, and its delays while the re-selections ran."""
    onset = history + before
    drifting = Drifting(series, shifted, onset)
    launched = "live" not in env.stack.children
    t0 = time.monotonic()
    topic, rid, seen = set_up(env, drifting, models, history, timeout)
    setup_s = time.monotonic() - t0
    try:
        first = {n: seen.revisions[n][-1]["model"] for n in drifting.names}
        cpu_before = env.cpu_seconds()
        onset_ms, sent = stream(env, topic, drifting, history, onset + after - 1, pace, background, rate)
        last = onset + after  # the last day is provisional: its revision folds every point
        wait(seen, lambda: seen.reached(drifting.names, last), timeout, "the revision with every point")
        time.sleep(1.0)  # the re-selections' last records
        seen.read()
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in env.cpu_seconds().items()}
        rows = []
        for i, name in enumerate(drifting.names):
            switches = seen.switches(name)
            # a switch triggered before the onset's point is final (its ordinal onset + 1) answers noise
            early = [r for r in switches if i >= shifted or r["switched"]["triggered_at"] <= onset + 1]
            switch = next((r for r in switches if r not in early), None)
            s = switch["switched"] if switch else None
            now = seen.revisions[name][-1]
            rows.append({"series": name, "first model": first[name], "model now": now["model"],
                         "false alarms": len(early), "points after onset": s["triggered_at"] - onset if s else None,
                         "seconds": round((switch["at_ms"] - onset_ms) / 1000, 2) if switch else None,
                         "old error": None if s is None or s["old_error"] is None else round(s["old_error"], 2),
                         "new error": round(s["new_error"], 2) if s else None,
                         "false alarm errors (old, new)": [(_round(r["switched"]["old_error"], 2),
                                                            _round(r["switched"]["new_error"], 2)) for r in early],
                         "rolling error now": _round(now["error"], 2), "threshold": _round(now["threshold"], 2)})
        shifted_rows = [r for r in rows if r["series"].startswith("shift")]
        switched = [r for r in shifted_rows if r["points after onset"] is not None]
        back = [r for r in shifted_rows if r["rolling error now"] is not None and r["threshold"] is not None
                and r["rolling error now"] <= r["threshold"]]
        selection_cpu = sum(cpu.get(k, 0.0) for k in SELECTION)
        observations = (after + before) * series + sum(len(v) for v in sent.values())
        out: dict[str, Any] = {
            "series": series, "shifted": shifted, "models": models, "history": history, "pace": pace,
            "patience": PATIENCE, "setup_s": round(setup_s, 1), "rows": rows,
            "switched": len(switched), "back_under_threshold": len(back),
            "false_alarms": {"shifted": sum(r["false alarms"] for r in shifted_rows),
                             "steady": sum(r["false alarms"] for r in rows if r not in shifted_rows)},
            "points_to_switch": {"median": _median([r["points after onset"] for r in switched]),
                                 "max": max((r["points after onset"] for r in switched), default=None)},
            "seconds_to_switch": {"median": _median([r["seconds"] for r in switched]),
                                  "max": max((r["seconds"] for r in switched), default=None)},
            "reselections": seen.reselections,
            "cpu_s_per_reselection": round(selection_cpu / seen.reselections, 3) if seen.reselections else None,
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "live_cpu_ms_per_point": round(1000 * cpu.get("live", 0.0) / observations, 3),
            "background_rate": rate if background is not None else None,
        }
        if background is not None and background_revisions is not None:
            background_revisions.read()
            matched = match(sent, background_revisions.by_series)
            out["background"] = {"sent": sum(len(v) for v in sent.values()), "lost": matched.lost,
                                 "p50_ms": _round(quantile(matched.delays_ms, 0.5)),
                                 "p99_ms": _round(quantile(matched.delays_ms, 0.99))}
        report(out)
        return out
    finally:
        seen.close()
        if launched and "live" in env.stack.children:
            proc = env.stack.children.pop("live")
            proc.terminate()
            proc.wait(60)


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def report(out: dict[str, Any]) -> None:
    print_table(f"live drift: {out['series']} series, {out['shifted']} change regime at the onset (level +{JUMP:g}, "
                f"trend {TREND:g} a day), {out['pace']:g} points a second each; patience {out['patience']}, "
                f"models {out['models']}", out["rows"])
    back = out.get("background")
    print_table("live drift: summary", [{
        "switched": f"{out['switched']}/{out['shifted']}", "error back under": out["back_under_threshold"],
        "false alarms (shifted before onset, steady)": f"{out['false_alarms']['shifted']}, "
                                                       f"{out['false_alarms']['steady']}",
        "points to switch (median, max)": f"{out['points_to_switch']['median']}, {out['points_to_switch']['max']}",
        "seconds (median, max)": f"{out['seconds_to_switch']['median']}, {out['seconds_to_switch']['max']}",
        "re-selections": out["reselections"], "CPU s each": out["cpu_s_per_reselection"],
        "live CPU ms/point": out["live_cpu_ms_per_point"],
        "background": "none" if back is None else
        f"{out['background_rate']:g}/s: p50 {back['p50_ms']} ms, p99 {back['p99_ms']} ms, lost {back['lost']}"}])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--shifted", type=int, default=10)
    parser.add_argument("--history", type=int, default=60, help="points a series before the request")
    parser.add_argument("--before", type=int, default=10, help="points a series after it, before the onset")
    parser.add_argument("--after", type=int, default=40, help="points a series from the onset on")
    parser.add_argument("--pace", type=float, default=5.0, help="points a second, each series")
    parser.add_argument("--models", default="naive,seasonal_naive,autoets,theta")
    args = parser.parse_args()
    with running(2) as env:
        out = measure(env, args.series, args.shifted, args.history, args.before, args.after, args.pace, args.models)
    save("live_drift", out)


if __name__ == "__main__":
    main()
