"""Compute: `python bench/compute.py [CONFIG.json] [--repeats 1] [--timex-reference DIR]`.

The multi-series bench config (default bench/configs/monthly.json: five monthly series, TIMEX's models) through
the whole system (broker, ingestion, one predictor with a pool worker per core, validator; warmed by the same
config on one series) and through the core alone in this process (`forecasting.pipeline.forecast_all`, the
same pool width), one after the other in each repeat; the figures are medians over the repeats:
- overhead = system wall ÷ core wall − 1 (`stream_overhead_ratio`; target ≤ 0.10);
- CPU efficiency = fit CPU ÷ (wall × cores): the CPU seconds of the pool workers (the system's predictor
  workers; the core's pool) over the wall time the cores were there for (`cpu_efficiency`, the system's;
  target ≥ 0.85);
- with `--timex-reference DIR` (built by the shared timex-reference.sh; `make bench` passes
  $TIMEX_REFERENCE_DIR), TIMEX 1.2.3 on the same config and CSV (bench/run_timex.py, its ingest + predict
  wall): `timex_wall_ratio` = system wall ÷ TIMEX wall (target ≤ 0.2); null without it.
The answer check (best model, transformation, window, test MAE; which stage was kept, each model's historical
MAE) compares system and core on the bench config and on the parity config (xcorr + historical predictions;
`--answer-check CONFIG` for others). Writes bench/results/compute.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scale_common import ROOT, Running, print_table, running, save, tree_cpu_seconds, update_summary

from forecasting.config import parse_config
from forecasting.pipeline import forecast_all
from timex_stream.runtime.kafka import producer
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow

DEFAULT_CONFIG = ROOT / "bench" / "configs" / "monthly.json"
# Answer-checked too (core against system), for the features the monthly config does not ask for.
PARITY_CONFIG = ROOT / "bench" / "configs" / "parity.json"
TICK = os.sysconf("SC_CLK_TCK")


def load(config_path: Path) -> tuple[dict[str, Any], Path]:
    config = json.loads(config_path.read_text())
    csv = Path(config["input_parameters"]["source_data_url"])
    csv = csv if csv.is_absolute() else ROOT / csv
    if not csv.exists() and csv == ROOT / "bench" / "data" / "monthly.csv":
        from forecast_core import make_monthly_data
        make_monthly_data(csv)
    return config, csv


def with_url(config: dict[str, Any], url: str, columns: str | None = None) -> dict[str, Any]:
    out = json.loads(json.dumps(config))
    inputs = out["input_parameters"]
    inputs["source_data_url"] = url
    if columns:
        inputs["columns_to_load_from_url"] = f"{inputs['index_column_name']},{columns}"
    return out


def children_cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def machine_cpu() -> dict[str, float]:
    """Core-seconds the whole machine spent so far (/proc/stat): busy, steal (taken by the hypervisor), idle."""
    with open("/proc/stat") as fh:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) / TICK for v in fh.readline().split()[1:9])
    return {"busy": user + nice + system + irq + softirq, "steal": steal, "idle": idle + iowait}


def core_run(config: dict[str, Any], csv: bytes, workers: int) -> dict[str, float]:
    """The core alone: wall, its pool's CPU, and the CPU of everything else on the machine (the idle stack's
    services included)."""
    cpu0, machine0, own0 = children_cpu(), machine_cpu(), time.process_time()
    t0 = time.perf_counter()
    choices = forecast_all(parse_config(config).config, csv, max_workers=workers)
    wall = time.perf_counter() - t0
    cpu, own = children_cpu() - cpu0, time.process_time() - own0
    answers = {name: answer(c.best.spec.model, c.best.spec.transformation, c.best.spec.window, c.best.metrics,
                            c.kept, c.historical) for name, c in sorted(choices.items()) if c.best}
    return {"wall_s": wall, "fit_cpu_s": cpu, "answers": answers,
            "other_cpu_s": round(machine_cpu()["busy"] - machine0["busy"] - cpu - own, 2)}


def answer(model: str, transformation: str | None, window: int | None, metrics: dict[str, float],
           kept: str | None = None, historical: dict[str, Any] | None = None) -> list[Any]:
    """What must be the same through the system and in the core: best model, transformation, window, test MAE,
    and, where the config asks, which stage was kept (xcorr) and each model's historical-prediction MAE."""
    mae = metrics.get("MAE")
    past = {m: None if (e["metrics"] or {}).get("mae") is None else round(e["metrics"]["mae"], 9)
            for m, e in sorted(((historical or {}).get("models") or {}).items())}
    return [model, transformation, window, None if mae is None else round(mae, 9), kept, past]


def system_run(env: Running, config: dict[str, Any]) -> dict[str, Any]:
    """One request through the system: wall seconds, CPU of the predictors' pool workers, best models; and
    where the rest of the cores' time went (each service, other processes on the machine, steal, idle)."""
    prod = producer(env.kafka.bootstrap_servers)
    cpu0 = sum(tree_cpu_seconds(pid, children_only=True) for pid in env.predictor_pids())
    by_process0, machine0, own0 = env.cpu_seconds(), machine_cpu(), time.process_time()
    t0, t0_ms = time.perf_counter(), time.time() * 1000
    rid = submit(prod, config, origin="bench")
    view = follow(env.kafka.bootstrap_servers, [rid], timeout=1800)[rid]
    wall = time.perf_counter() - t0
    cpu = sum(tree_cpu_seconds(pid, children_only=True) for pid in env.predictor_pids()) - cpu0
    machine, own = machine_cpu(), time.process_time() - own0
    by_process = {k: round(v - by_process0.get(k, 0.0), 2) for k, v in env.cpu_seconds().items()}
    if view.status != "done":
        raise RuntimeError(f"the bench request ended {view.status}: {view.failures}")
    # Other processes took cores from the fits: a figure to read cpu_efficiency by (a quiet machine: ~0).
    ours = sum(v for k, v in by_process.items() if not k.endswith(" workers")) + cpu + own
    return {"wall_s": wall, "fit_cpu_s": cpu, "best": {s: r["model"] for s, r in sorted(view.results.items())},
            "answers": {s: answer(r["model"], r["transformation"], r["window"], r["metrics"], r.get("kept"),
                                  r.get("historical_predictions")) for s, r in sorted(view.results.items())},
            "request_id": rid, "t0_ms": t0_ms, "cpu_by_process": by_process, "bench_cpu_s": round(own, 2),
            "other_cpu_s": round(machine["busy"] - machine0["busy"] - ours, 2),
            "steal_s": round(machine["steal"] - machine0["steal"], 2),
            "idle_cores_s": round(machine["idle"] - machine0["idle"], 2)}


def _timex_path(reference: Path) -> str:
    """The shared script's stand-in for torch, unless the venv has the real one (`pip install torch==1.13.1` in
    it): TIMEX's lstm then runs for the comparison of `bench/configs/monthly_lstm.json`."""
    real = any((reference / "venv").glob("lib/python*/site-packages/torch/__init__.py"))
    return "" if real else str(reference / "stub")


def timex_run(reference: Path, config: dict[str, Any]) -> dict[str, Any]:
    """TIMEX 1.2.3 on `config` in the reference venv: its JSON line (ingest_s + predict_s is its wall)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(config, fh)
    try:
        done = subprocess.run([str(reference / "venv" / "bin" / "python"), "-W", "ignore",
                               str(ROOT / "bench" / "run_timex.py"), fh.name], capture_output=True, text=True,
                              timeout=3600, env={**os.environ, "PYTHONPATH": _timex_path(reference)})
    finally:
        os.unlink(fh.name)
    if done.returncode != 0:
        raise RuntimeError(f"TIMEX failed ({done.returncode}): {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["wall_s"] = out["ingest_s"] + out["predict_s"]
    return out


def efficiency(run: dict[str, Any], cores: int, left: bool = False) -> float:
    """Fit CPU ÷ (wall × cores); `left`: ÷ what other processes on the machine and steal left of it."""
    taken = run["other_cpu_s"] + run.get("steal_s", 0.0) if left else 0.0
    return run["fit_cpu_s"] / max(run["wall_s"] * cores - taken, 1e-9)


def answer_check(env: Running, config_path: Path, workers: int) -> dict[str, Any]:
    """The answer check alone on another config (the parity config: xcorr and historical predictions): once
    through the core, once through the system; → the series whose answers differ (core, system)."""
    config, csv_path = load(config_path)
    csv = csv_path.read_bytes()
    env.files[csv_path.name] = csv
    core = core_run(with_url(config, f"upload:{csv_path.name}"), csv, workers)["answers"]
    system = system_run(env, with_url(config, f"{env.base_url}/{csv_path.name}"))["answers"]
    differ = {s: (core.get(s), system.get(s)) for s in core.keys() | system.keys() if core.get(s) != system.get(s)}
    print(f"answers on {config_path.name}: "
          + ("the same through the system and in the core" if not differ else f"DIFFERENT (core, system): {differ}"))
    return {"answers": core, "differ": differ}


def measure(env: Running, config_path: Path = DEFAULT_CONFIG, repeats: int = 1,
            reference: Path | None = None, answer_configs: tuple[Path, ...] = (PARITY_CONFIG,)) -> dict[str, Any]:
    config, csv_path = load(config_path)
    csv = csv_path.read_bytes()
    env.files[csv_path.name] = csv
    url = f"{env.base_url}/{csv_path.name}"
    served = with_url(config, url)
    index = config["input_parameters"]["index_column_name"]
    first = csv.split(b"\n", 1)[0].decode().split(",")
    system_run(env, with_url(config, url, next(c for c in first if c != index)))  # warm: model libraries load
    cores, workers = os.cpu_count() or 1, env.concurrency
    runs = []
    for _ in range(repeats):
        runs.append({"core": core_run(with_url(config, f"upload:{csv_path.name}"), csv, workers),
                     "system": system_run(env, served)})
    # On a shared machine, other processes take cores from the fits: efficiency_left is fit CPU ÷ the cores' time
    # less theirs (a diagnostic; cpu_efficiency stays the figure).
    print_table("compute: system and core (TIMEX next, where built); other_cpu_s: other processes on the machine",
                [{"run": side, **{k: round(r[side][k], 2) for k in ("wall_s", "fit_cpu_s")},
                  "other_cpu_s": r[side]["other_cpu_s"], "cpu_efficiency": round(efficiency(r[side], cores), 3),
                  "efficiency_left": round(efficiency(r[side], cores, left=True), 3)}
                 for r in runs for side in ("core", "system")])
    timex = timex_run(reference, served) if reference else None
    med = {side: {k: statistics.median(r[side][k] for r in runs) for k in ("wall_s", "fit_cpu_s")}
           for side in ("core", "system")}
    overhead = statistics.median(r["system"]["wall_s"] / r["core"]["wall_s"] - 1 for r in runs)
    eff = {side: statistics.median(efficiency(r[side], cores) for r in runs) for side in ("core", "system")}
    rows = [{"run": side, "wall_s": round(med[side]["wall_s"], 2), "fit_cpu_s": round(med[side]["fit_cpu_s"], 1),
             "cpu_efficiency": round(eff[side], 2)} for side in ("core", "system")]
    ratio = None
    if timex:
        ratio = round(med["system"]["wall_s"] / timex["wall_s"], 3)
        rows.append({"run": "TIMEX 1.2.3", "wall_s": round(timex["wall_s"], 2),
                     "fit_cpu_s": round(timex["cpu_self_s"] + timex["cpu_children_s"], 1), "cpu_efficiency": None})
    print_table(f"compute: {config_path.name}, {workers} pool workers, {cores} cores, median of {repeats}: "
                f"overhead {overhead:+.1%}, system ÷ TIMEX wall {ratio if ratio is not None else '- (not built)'}",
                rows)
    best_system = runs[-1]["system"]["best"]
    differ = {s: (r["core"]["answers"].get(s), r["system"]["answers"].get(s)) for r in runs
              for s in r["core"]["answers"].keys() | r["system"]["answers"].keys()
              if r["core"]["answers"].get(s) != r["system"]["answers"].get(s)}
    print("answers (best model, transformation, window, test MAE, kept, historical MAE per model): "
          + ("the same through the system and in the core" if not differ else f"DIFFERENT (core, system): {differ}"))
    checked = {path.name: answer_check(env, path, workers) for path in answer_configs}
    return {"config": config_path.name, "repeats": repeats, "workers": workers, "runs": runs, "rows": rows,
            "best_system": best_system, "answers_differ": differ, "answer_checks": checked, "timex": timex,
            "summary": {"stream_overhead_ratio": round(overhead, 3), "cpu_efficiency": round(eff["system"], 3),
                        "timex_wall_ratio": ratio}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", nargs="?", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timex-reference", type=Path, help="the TIMEX reference dir (venv/ and stub/)")
    parser.add_argument("--answer-check", type=Path, action="append", dest="answer_configs",
                        help=f"another config whose answers core and system must agree on (default: "
                             f"{PARITY_CONFIG.relative_to(ROOT)}; repeatable)")
    args = parser.parse_args()
    with running(os.cpu_count() or 1) as env:
        out = measure(env, args.config, args.repeats, args.timex_reference,
                      tuple(args.answer_configs or (PARITY_CONFIG,)))
    save("compute", out)
    update_summary(out["summary"])


if __name__ == "__main__":
    sys.exit(main())
