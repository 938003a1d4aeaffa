"""All series, all units, in a process pool: what the benches (and a single-machine run) use, with every
feature the services have, planned and chosen by the same code the services call:

1. the units of every series (forecasting.historical.plan_all: the ordinary ones, with the series' additional
   regressors, then the historical steps), validated (forecasting.dispatch.run, as a predictor runs them);
2. each model's best unit refitted on window + test points, and the choice (forecasting.selection);
3. with `xcorr_parameters`, the multivariate stage (forecasting.multivariate, as validator.multivariate
   carries it out): each target's extra regressors enter as their history and their best univariate
   forecast, its units are validated, the best refitted, and kept only when better;
4. with `historical_prediction_parameters`, the historical answer (forecasting.historical.collect) from the
   historical steps, named by the univariate best model (as the validator does); with both, each step's
   multivariate units too (forecasting.historical_multivariate: TIMEX re-runs its stage at every step).
Each phase's units are spread over the pool; the phases follow one another as the services' do."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from forecasting import historical_multivariate as past_stage
from forecasting import multivariate as stage
from forecasting.config import TimexConfig
from forecasting.data import load_series
from forecasting.dispatch import run
from forecasting.historical import collect, drop_history, first_known, plan_all
from forecasting.regressors import AdditionalRegressors, align, load
from forecasting.selection import SeriesChoice, choose_final, refits_needed
from forecasting.series import to_wire
from forecasting.tail import HISTORY_TAIL_POINTS
from forecasting.units import UnitResult, UnitSpec
from forecasting.workers import init_worker
from forecasting.xcorr import SeriesXcorr, request_xcorr

_CHUNK = 4  # units per task: small units (naive, theta) would otherwise pay more in IPC than in work
_COSTLY = ("fbprophet", "arima", "exponentialsmoothing")
Fetch = Callable[[str], bytes]


@dataclass
class _Target:
    """One series as the pipeline runs it."""

    series: pd.Series
    units: list[UnitSpec]
    known: int  # points known at the first historical step (0: none)
    regressors: pd.DataFrame | None  # its additional regressors, aligned on its index and the horizon
    xcorr: SeriesXcorr | None = None


# A unit, whether it is a final refit, its regressors' values; for a multivariate historical step, the stored
# values its own are made from (forecasting.dispatch.run).
Item = tuple[UnitSpec, bool, pd.DataFrame | None, dict[str, pd.Series] | None]


def _run_units(config: TimexConfig, series: pd.Series, items: list[Item]) -> list[UnitResult]:
    return [run(config, series, spec, refit, regressors, columns) for spec, refit, regressors, columns in items]


def _spread(pool: Executor, config: TimexConfig, work: dict[str, tuple[pd.Series, list[Item]]]
            ) -> dict[str, list[UnitResult]]:
    """Every series' units in the pool (costly models first, so the pool's tail is made of cheap units),
    the results of each series in the order of its items."""
    futures: list[tuple[str, list[int], Future[list[UnitResult]]]] = []
    for name, (series, items) in work.items():
        order = sorted(range(len(items)), key=lambda i: items[i][0].model not in _COSTLY)
        for k in range(0, len(order), _CHUNK):
            chunk = order[k:k + _CHUNK]
            futures.append((name, chunk, pool.submit(_run_units, config, series, [items[i] for i in chunk])))
    placed: dict[str, dict[int, UnitResult]] = {name: {} for name in work}
    for name, chunk, future in futures:
        placed[name].update(zip(chunk, future.result(), strict=True))
    return {name: [placed[name][i] for i in range(len(work[name][1]))] for name in work}


def _same(specs: list[UnitSpec], refit: bool, regressors: pd.DataFrame | None) -> list[Item]:
    return [(spec, refit, regressors, None) for spec in specs]


def _read_file(url: str) -> bytes:
    """The default `fetch`: a local path (the benches' regressor CSVs); anything else is refused."""
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"the core reads local files only; give it a fetch for {url}")
    return Path(url.removeprefix("file://")).read_bytes()


def _prepare(config: TimexConfig, all_series: dict[str, pd.Series], fetch: Fetch,
             choices: dict[str, SeriesChoice]) -> tuple[dict[str, _Target], list[str]]:
    """Plan every series as the ingestion does (timex_stream.runtime.fan_out): (the series, the request's
    warnings); a series that cannot be planned gets its `data_error` in `choices`."""
    additional = load(config, all_series, fetch) if config.additional_regressors else AdditionalRegressors()
    choices.update({name: SeriesChoice(data_error=problem) for name, problem in additional.errors.items()})
    targets: dict[str, _Target] = {}
    notes: list[str] = list(additional.notes)
    for name, s in all_series.items():
        if name in additional.errors:
            continue
        try:
            known = first_known(config, s)
        except ValueError as exc:  # still forecast; the answer says why it has no history
            notes.append(f"{name}: no historical predictions: {exc}")
            known = 0
        try:
            units = plan_all(config, len(s), name, known, additional.names(name))
        except ValueError as exc:
            choices[name] = SeriesChoice(data_error=str(exc))
            continue
        keys = additional.per_series.get(name, [])
        frame = (align({str(additional.columns[k].name): additional.columns[k] for k in keys},
                       pd.DatetimeIndex(s.index), config.model_parameters.prediction_lags) if keys else None)
        targets[name] = _Target(s, units, known, frame)
    xcorr, warning = request_xcorr(config, {name: t.series for name, t in targets.items()})
    for name, t in targets.items():
        t.xcorr = xcorr.get(name)
    if warning:
        notes.append(warning)
    return targets, notes


def _multivariate(config: TimexConfig, targets: dict[str, _Target], chosen: dict[str, SeriesChoice],
                  pool: Executor) -> None:
    """The multivariate stage of every target with extra regressors (validator.multivariate's steps)."""
    work, problems = {}, {}
    for name, t in targets.items():
        regressors = stage.wanted(config, t.xcorr)
        if not regressors:
            continue
        values, missing = {}, []
        for r in regressors:
            best = chosen[r].best if r in chosen else None
            if best is None or best.forecast is None:
                missing.append(f"{r}: '{r}' has no forecast")
            else:
                values[r] = stage.with_forecast(targets[r].series, best.forecast.to_dict())
        problems[name] = missing
        specs = stage.plan(config, chosen[name].per_model, len(t.series), list(values))
        if specs:
            frame = align(values, pd.DatetimeIndex(t.series.index), config.model_parameters.prediction_lags)
            work[name] = (t.series, _same(specs, False, frame))
    validated = _spread(pool, config, work)
    refits = _spread(pool, config, {
        name: (s, _same(refits_needed(config, validated[name], best_only=True).specs, True, items[0][2]))
        for name, (s, items) in work.items()})
    for name, t in targets.items():
        if t.xcorr is None:
            continue
        choice = chosen[name]
        choice.xcorr = t.xcorr.answer()
        choice.univariate = choice.best
        choice.kept = "univariate" if choice.best is not None else None
        if name not in problems:
            continue
        best = stage.best(config, validated.get(name, []), refits.get(name, []))
        found = list(problems[name])
        if best is None and not found:
            found.append("no model fitted with the extra regressors produced a forecast")
        if found:
            choice.notes.append("answered with the univariate model only: " + "; ".join(found))
        if best is None:
            continue
        choice.multivariate = best
        if stage.keeps(config, choice.best.metrics if choice.best is not None else None, best):
            choice.best, choice.kept = best, "multivariate"


def _historical_multivariate(config: TimexConfig, targets: dict[str, _Target],
                             results: dict[str, list[UnitResult]], notes: list[str]) -> dict[str, list[Item]]:
    """Every series' multivariate historical units (forecasting.historical_multivariate) with their regressor
    values, from the cross-correlation at each step's date and every series' univariate steps."""
    series = {name: t.series for name, t in targets.items()}
    regressors_at, warning = past_stage.regressors_by_step(config, series)
    if warning:
        notes.append(warning)
    if not regressors_at:
        return {}
    forecasts = {name: past_stage.step_forecasts(config, s, results[name]) for name, s in series.items()}
    ready = {name: {m: f.dates for m, f in found.items()} for name, found in forecasts.items()}
    columns = {**series, **{past_stage.steps_column(name, m): f.values for name, found in forecasts.items()
                            for m, f in found.items()}}
    out: dict[str, list[Item]] = {}
    for name, s in series.items():
        steps = past_stage.steps_with_regressors(config, s, regressors_at.get(name, {}))
        out[name] = [(spec, False, None, columns) for spec in past_stage.plan(config, results[name], steps, ready)]
    return out


def _run(config: TimexConfig, all_series: dict[str, pd.Series], pool: Executor, fetch: Fetch,
         historical_multivariate: bool) -> dict[str, SeriesChoice]:
    choices: dict[str, SeriesChoice] = {}
    targets, notes = _prepare(config, all_series, fetch, choices)
    results = _spread(pool, config, {name: (t.series, _same(t.units, False, t.regressors))
                                     for name, t in targets.items()})
    # The final refits, and the multivariate historical steps (they need every series' univariate steps).
    past = _historical_multivariate(config, targets, results, notes) if historical_multivariate else {}
    second = _spread(pool, config, {
        name: (t.series, _same(refits_needed(config, results[name]).specs, True, t.regressors)
               + past.get(name, [])) for name, t in targets.items()})
    refits = {name: done[:len(done) - len(past.get(name, []))] for name, done in second.items()}
    for name, done in second.items():
        results[name] += done[len(refits[name]):]
    chosen = {name: choose_final(config, results[name], refits[name]) for name in targets}
    for name, t in targets.items():
        univariate_best = chosen[name].best
        history = to_wire(t.series.iloc[-HISTORY_TAIL_POINTS:])[:2]
        chosen[name] = replace(chosen[name], notes=list(notes), historical=collect(
            config, drop_history(results[name])[1], len(t.series), t.known, history,
            univariate_best.spec.model if univariate_best else None))
    _multivariate(config, targets, chosen, pool)
    return {**choices, **chosen}


def forecast_all(config: TimexConfig, csv_bytes: bytes, max_workers: int | None = None, fetch: Fetch | None = None,
                 historical_multivariate: bool = True) -> dict[str, SeriesChoice]:
    """Load, validate every unit, pick the best; series with data problems are left out (see load_series).
    `fetch`: how the additional regressors' URLs are read (default: local paths only).
    `historical_multivariate`: run TIMEX's multivariate stage inside the historical steps too (as the services
    do; off: the steps are univariate)."""
    series_set = load_series(config, csv_bytes)
    workers = max_workers or config.max_threads or os.cpu_count() or 1
    # Workers from a fork server, not forks of this process: a caller that ran a unit itself may have started
    # threads (JAX's, for lstm), and a child forked from a threaded process can deadlock.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_worker) as pool:
        choices = _run(config, series_set.series, pool, fetch or _read_file, historical_multivariate)
    choices.update({name: SeriesChoice(data_error=problem) for name, problem in series_set.errors.items()})
    return choices
