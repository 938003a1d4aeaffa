"""CPU timeline: `python bench/cpu_timeline.py [CONFIG.json] [--repeats 1] [--verbose]`.

Where the pool workers' time goes in one request of the compute bench (bench/compute.py's config and system
run, warmed the same way). Each record's busy interval on its pool worker comes from its Prediction: it ends
when the Prediction was written (its Kafka timestamp) and lasted the record's fit seconds (every unit batched
in it); `worker` names the process. Every moment a worker is not running a unit, between the submit and the
answer, is put under one cause:
- start-up: before the worker's first unit (ingestion, the first fetch, the worker's first dispatch);
- dispatch: a record was on `datasets` and not started yet while this worker waited (fetch, reading the
  series, the hop to the pool);
- refit barrier: nothing queued, more to come (final refits), and a validation unit still running: a
  series' refits wait for its last unit;
- refit hop: nothing queued, more to come, every validation unit in (the validator's hop to the refits);
- tail: nothing queued and nothing more to come while another worker still runs a unit;
- end: after the last unit (the validator decides, best-models, the reader).
A sampler (every 50 ms) reads each pool worker's CPU seconds (its reaped children, cmdstan, included), so the
same breakdown is given in CPU seconds: each interval, a worker's unused time (the interval less the CPU it
used) goes to the cause of that moment, or to "running, off CPU" while it ran a unit (its core taken by the
services or by other processes, or the unit waiting). The cores' view of the
wall follows (compute.system_run, from /proc/stat): pool workers, each service, this bench process, other
processes, steal, and idle cores.
`--verbose` prints every record's interval. Writes bench/results/cpu_timeline.json (with every record's).
"""

from __future__ import annotations

import argparse
import bisect
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from compute import DEFAULT_CONFIG, load, system_run, with_url
from scale_common import Running, print_table, running, save

from schemas import decode_as
from schemas.topics import DATASETS, PREDICTIONS
from timex_stream.runtime.history import read_range

CAUSES = ("start-up", "dispatch", "refit barrier", "refit hop", "tail", "end")
OFF_CPU = "running, off CPU"
SAMPLE_S = 0.05
TICK = os.sysconf("SC_CLK_TCK")
# (epoch s, {pool worker pid: (own CPU s, its reaped children's CPU s)})
Samples = list[tuple[float, dict[int, tuple[float, float]]]]


@dataclass
class Record:
    """One Dataset (a unit, or cheap units batched) and its Prediction: times in s after the submit."""

    series: str
    index: int  # its first unit's index in the series' plan (final refits: after the plan)
    models: list[str]
    refit: bool
    written: float  # the Dataset's Kafka timestamp
    size: int  # units in the record
    start: float = -1.0  # end − fit seconds
    end: float = -1.0  # the Prediction's Kafka timestamp
    worker: int = 0  # pid of the pool worker


def _proc_cpu(pid: int) -> tuple[float, float] | None:
    """(own, reaped children's) CPU seconds of `pid` from /proc (psutil's tree walk costs this process more
    CPU than the sampling is worth)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    utime, stime, cutime, cstime = (int(v) / TICK for v in fields[11:15])
    return utime + stime, cutime + cstime


class Sampler:
    """`Samples` every SAMPLE_S. Pool workers (predictor → fork server → worker) are looked up again when one
    of them is gone."""

    def __init__(self, predictor_pids: list[int]) -> None:
        self.roots = predictor_pids
        self.samples: Samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._pids = self._workers()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _workers(self) -> list[int]:
        pids = []
        for root in self.roots:
            try:
                servers = psutil.Process(root).children()
            except psutil.NoSuchProcess:
                continue
            for server in servers:
                try:
                    pids += [w.pid for w in server.children()]
                except psutil.NoSuchProcess:
                    continue
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            cpu = {pid: c for pid in self._pids if (c := _proc_cpu(pid)) is not None}
            if len(cpu) < len(self._pids):
                self._pids = self._workers()
            self.samples.append((time.time(), cpu))
            self._stop.wait(SAMPLE_S)


def _records(env: Running, topic: str, name: str, rid: str, since_ms: int) -> list[tuple[float, dict[str, Any]]]:
    out = []
    for msg in read_range(env.kafka.bootstrap_servers, topic, since_ms):
        if (msg.key() or b"").decode().split("/", 1)[0] == rid:
            out.append((msg.timestamp()[1], decode_as(name, msg.value())))
    return out


def records(env: Running, run: dict[str, Any]) -> list[Record]:
    """The records of `run` (a compute.system_run result) with when each was written, started and ended."""
    rid, t0 = run["request_id"], run["t0_ms"]
    since = int(t0) - 1000
    found: dict[tuple[str, int], Record] = {}
    for ms, d in _records(env, DATASETS.name, "Dataset", rid, since):
        key = (d["series"], d["unit"]["index"])
        if key not in found:  # a unit asked again keeps its first write
            found[key] = Record(d["series"], d["unit"]["index"], [u["model"] for u in [d["unit"], *d["more"]]],
                                d["unit"]["refit"], (ms - t0) / 1000, 1 + len(d["more"]))
    for ms, p in _records(env, PREDICTIONS.name, "Prediction", rid, since):
        rec = found.get((p["series"], p["unit"]["index"]))
        if rec is None or rec.end >= 0:
            continue
        rec.end = (ms - t0) / 1000
        fit = p["fit_seconds"] + sum(m["fit_seconds"] for m in p["more"])
        rec.start, rec.worker = max(rec.written, rec.end - fit), int(p["worker"].rsplit("/", 1)[-1])
    return sorted((r for r in found.values() if r.end >= 0), key=lambda r: r.start)


class Causes:
    """Why a worker is not running a unit at a moment (see the module's doc)."""

    def __init__(self, recs: list[Record]) -> None:
        self.busy: dict[int, list[tuple[float, float]]] = defaultdict(list)
        for r in recs:
            self.busy[r.worker].append((r.start, r.end))
        for spans in self.busy.values():
            spans.sort()
        self.first = {w: spans[0][0] for w, spans in self.busy.items()}
        self.last_end = max((r.end for r in recs), default=0.0)
        self.writes = sorted(r.written for r in recs)
        self.starts = sorted(r.start for r in recs)
        self.validation = [(r.start, r.end) for r in recs if not r.refit]

    def running(self, worker: int, t: float) -> bool:
        spans = self.busy.get(worker, [])
        i = bisect.bisect_right(spans, (t, float("inf"))) - 1
        return i >= 0 and spans[i][0] <= t < spans[i][1]

    def at(self, worker: int, t: float) -> str:
        if self.running(worker, t):
            return OFF_CPU
        if t < self.first.get(worker, float("inf")):
            return "start-up"
        if t >= self.last_end:
            return "end"
        if bisect.bisect_right(self.writes, t) > bisect.bisect_right(self.starts, t):
            return "dispatch"  # written, not started: work this worker could have taken
        if self.writes[-1] > t:
            return "refit barrier" if any(a <= t < b for a, b in self.validation) else "refit hop"
        if any(self.running(w, t) for w in self.busy if w != worker):
            return "tail"
        return "end"


def worker_time(causes: Causes, workers: list[int], wall: float) -> dict[str, float]:
    """Seconds of the workers' wall time by cause, 1 ms steps (OFF_CPU here: running a unit)."""
    out = dict.fromkeys((OFF_CPU, *CAUSES), 0.0)
    step = 0.001
    for w in workers:
        for k in range(int(wall / step)):
            out[causes.at(w, (k + 0.5) * step)] += step
    return out


def cpu_time(causes: Causes, samples: Samples, t0: float, wall: float
             ) -> tuple[dict[str, float], float]:
    """Unused CPU seconds of the pool workers by cause, from the samples within [0, wall] s after the submit;
    and their CPU seconds used."""
    out = dict.fromkeys((OFF_CPU, *CAUSES), 0.0)
    used = 0.0
    inside = [(t - t0, cpu) for t, cpu in samples if 0 <= t - t0 <= wall]
    for (a, before), (b, after) in zip(inside, inside[1:], strict=False):
        for w, cpu in after.items():
            if w not in before:
                continue  # a worker started or replaced in between
            # Not capped at the interval: a cmdstan run's CPU shows when it is reaped, within its unit.
            spent = max(sum(cpu) - sum(before[w]), 0.0)
            used += spent
            out[causes.at(w, (a + b) / 2)] += (b - a) - spent
    return out, used


def analyse(env: Running, run: dict[str, Any], samples: Samples) -> dict[str, Any]:
    recs = records(env, run)
    causes = Causes(recs)
    wall, t0 = run["wall_s"], run["t0_ms"] / 1000
    workers = sorted({w for _, cpu in samples for w in cpu} | set(causes.busy))
    by_cause, used = cpu_time(causes, samples, t0, wall)
    services = {k: v for k, v in run["cpu_by_process"].items() if not k.endswith(" workers")}
    inside = [cpu for t, cpu in samples if 0 <= t - t0 <= wall]
    reaped = sum(inside[-1][w][1] - inside[0][w][1] for w in inside[-1] if w in inside[0]) if inside else 0.0
    cores = os.cpu_count() or 1
    return {"wall_s": round(wall, 2), "records": len(recs), "workers": len(workers), "cores": cores,
            "worker_time_s": {k: round(v, 2) for k, v in worker_time(causes, workers, wall).items()},
            "worker_cpu_unused_s": {k: round(v, 2) for k, v in by_cause.items()},
            "worker_cpu_sampled_s": round(used, 2), "fit_cpu_s": round(run["fit_cpu_s"], 2),
            "reaped_children_cpu_s": round(reaped, 2),
            "service_cpu_s": services, "bench_cpu_s": run["bench_cpu_s"], "other_cpu_s": run["other_cpu_s"],
            "steal_s": run["steal_s"], "idle_cores_s": run["idle_cores_s"],
            "cpu_efficiency": round(run["fit_cpu_s"] / (wall * cores), 3),
            "timeline": [r.__dict__ for r in recs]}


def print_report(rep: dict[str, Any]) -> None:
    cap = rep["wall_s"] * rep["workers"]
    rows = [{"cause": c, "worker_s": rep["worker_time_s"][c], "unused_cpu_s": rep["worker_cpu_unused_s"][c],
             "share_of_cpu": round(rep["worker_cpu_unused_s"][c] / cap, 3)} for c in (*CAUSES, OFF_CPU)]
    rows.append({"cause": "(used: pool workers' CPU)", "worker_s": None, "unused_cpu_s": rep["worker_cpu_sampled_s"],
                 "share_of_cpu": round(rep["worker_cpu_sampled_s"] / cap, 3)})
    print_table(f"pool workers: {rep['workers']} × wall {rep['wall_s']} s = {cap:.1f} s, {rep['records']} records; "
                "worker_s: time not running a unit (running one: last row but one); unused_cpu_s: time less the "
                "CPU used, sampled every 50 ms", rows)
    cores_s = rep["wall_s"] * rep["cores"]
    parts = {"pool workers": rep["fit_cpu_s"], "  of which their children (cmdstan)": rep["reaped_children_cpu_s"],
             **{f"{k} (service)": v for k, v in rep["service_cpu_s"].items()},
             "bench process": rep["bench_cpu_s"], "other processes": rep["other_cpu_s"], "steal": rep["steal_s"],
             "idle cores": rep["idle_cores_s"]}
    print_table(f"cores: {rep['cores']} × wall = {cores_s:.1f} s; cpu_efficiency {rep['cpu_efficiency']}",
                [{"where": k, "cpu_s": v, "share": None if v is None else round(v / cores_s, 3)}
                 for k, v in parts.items()])


def print_records(rep: dict[str, Any]) -> None:
    print_table("records (s after the submit)", [
        {"series": r["series"], "index": r["index"], "models": ",".join(sorted(set(r["models"]))), "n": r["size"],
         "refit": r["refit"], "written": round(r["written"], 3), "start": round(r["start"], 3),
         "end": round(r["end"], 3), "worker": r["worker"]} for r in rep["timeline"]])


def measure(env: Running, config_path: Path, repeats: int, verbose: bool) -> list[dict[str, Any]]:
    config, csv_path = load(config_path)
    csv = csv_path.read_bytes()
    env.files[csv_path.name] = csv
    url = f"{env.base_url}/{csv_path.name}"
    index = config["input_parameters"]["index_column_name"]
    first = csv.split(b"\n", 1)[0].decode().split(",")
    system_run(env, with_url(config, url, next(c for c in first if c != index)))  # warm, as compute.py
    reports = []
    for _ in range(repeats):
        with Sampler(env.predictor_pids()) as sampler:
            run = system_run(env, with_url(config, url))
        rep = analyse(env, run, sampler.samples)
        if verbose:
            print_records(rep)
        print_report(rep)
        reports.append(rep)
    if repeats > 1:
        print(f"\nmedian of {repeats}: cpu_efficiency {statistics.median(r['cpu_efficiency'] for r in reports):.3f}; "
              "unused worker CPU s by cause: " + ", ".join(
                  f"{c} {statistics.median(r['worker_cpu_unused_s'][c] for r in reports):.2f}"
                  for c in (*CAUSES, OFF_CPU)))
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="print every record's interval")
    args = parser.parse_args()
    with running(os.cpu_count() or 1) as env:
        reports = measure(env, args.config, args.repeats, args.verbose)
    save("cpu_timeline", {"config": args.config.name, "repeats": args.repeats, "reports": reports})


if __name__ == "__main__":
    sys.exit(main())
