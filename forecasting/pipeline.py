"""All series, all units, in a process pool: what the bench (and a single-machine run) uses.

Two phases keep the work at TIMEX's level: validate every unit, then refit only each model's best unit
on window + test points for the final forecast (run_unit's default does both for one unit); the protocol
is forecasting.selection's, as the stream services follow it."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor

import pandas as pd

from forecasting.config import TimexConfig
from forecasting.data import load_series
from forecasting.selection import SeriesChoice, choose_final, final_refit, refits_needed
from forecasting.units import UnitResult, UnitSpec, plan_units, run_unit
from forecasting.workers import init_worker

_CHUNK = 4  # units per task: small units (naive, theta) would otherwise pay more in IPC than in work


def _validate(config: TimexConfig, series: pd.Series, specs: list[UnitSpec]) -> list[UnitResult]:
    return [run_unit(config, series, spec, with_forecast=False) for spec in specs]


def _run(config: TimexConfig, all_series: dict[str, pd.Series], pool: Executor) -> dict[str, SeriesChoice]:
    futures = []
    for name, series in all_series.items():
        specs = plan_units(config, series)
        # Expensive models first, so the pool's tail is made of cheap units.
        specs.sort(key=lambda s: s.model not in ("fbprophet", "arima", "exponentialsmoothing"))
        for i in range(0, len(specs), _CHUNK):
            futures.append((name, pool.submit(_validate, config, series, specs[i : i + _CHUNK])))
    results: dict[str, list[UnitResult]] = {name: [] for name in all_series}
    for name, future in futures:
        results[name].extend(future.result())
    refits = {
        name: [pool.submit(final_refit, config, series, spec) for spec in refits_needed(config, results[name]).specs]
        for name, series in all_series.items()
    }
    return {name: choose_final(config, results[name], [f.result() for f in refits[name]]) for name in all_series}


def forecast_all(
    config: TimexConfig, csv_bytes: bytes, max_workers: int | None = None
) -> dict[str, SeriesChoice]:
    """Load, validate every unit, pick the best; series with data problems are left out (see load_series)."""
    series_set = load_series(config, csv_bytes)
    workers = max_workers or config.max_threads or os.cpu_count() or 1
    # Workers from a fork server, not forks of this process: a caller that ran a unit itself may have started
    # threads (JAX's, for lstm), and a child forked from a threaded process can deadlock.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_worker) as pool:
        choices = _run(config, series_set.series, pool)
    choices.update({name: SeriesChoice(data_error=problem) for name, problem in series_set.errors.items()})
    return choices
