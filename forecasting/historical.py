"""TIMEX's historical predictions (`historical_prediction_parameters`), as units any predictor can run.

TIMEX 1.2.3 (`compute_historical_predictions`): from `initial_index` (the last point known at the first step)
it reruns the whole model selection on the data known then, for every model (each transformation, each
training window, the best window refitted on window + test points), keeps each model's forecast of the next
`delta` points (fewer at the last step), moves `delta` points on, and at the end scores each model's
forecasts against what happened. An `initial_index` at the last point recomputes the last `delta` points.

Here one step of one model with one transformation is one unit (`UnitSpec.historical_end` = points known,
window 0 = every window tried): the predictor validates every window on the known points, refits the best
and forecasts the step's points (`run_step`); the validator keeps, per step and model, the transformation
with the lower validation error (TIMEX's choice) and `collect`s the answer. Differences from TIMEX: a step
forecasts its own points only (TIMEX forecasts `prediction_lags` and keeps up to `delta` of them, so a delta
over prediction_lags leaves TIMEX gaps). With `xcorr_parameters`, TIMEX re-runs the cross-correlation and
the multivariate stage at every step: forecasting.historical_multivariate plans those units, and `choose_steps`
keeps a model's multivariate step where it validated better (as the stage's `keeps`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecasting.config import TimexConfig
from forecasting.data import MIN_TRAIN_POINTS, DataError, parse_dates
from forecasting.metrics import compute_metrics, score
from forecasting.series import Tail
from forecasting.tail import HISTORY_TAIL_POINTS
from forecasting.units import UnitResult, UnitSpec, plan_units_for, refit_unit, run_unit

_FIELD = "historical_prediction_parameters.initial_index"
# TIMEX's ValidationPerformance (mae, mse, rmse, am, sd), plus mape and smape; lower-case as the answer names them.
_METRICS = {"MAE": "mae", "MSE": "mse", "RMSE": "rmse", "AM": "am", "SD": "sd", "MAPE": "mape", "sMAPE": "smape"}


def first_known(config: TimexConfig, series: pd.Series) -> int:
    """Points known at the first step (0: no historical predictions asked); ValueError in plain words when
    `initial_index` does not fit this series."""
    hp = config.historical_prediction_parameters
    if hp is None:
        return 0
    n, name = len(series), str(series.name)
    if isinstance(hp.initial_index, int):
        position = hp.initial_index
        if position >= n:
            raise ValueError(f"{_FIELD}: position {position} is past the end of series '{name}' ({n} points)")
    else:
        try:
            date = pd.Timestamp(parse_dates(pd.Series([hp.initial_index]),
                                            config.input_parameters.dateparser_options, _FIELD)[0])
        except DataError:
            raise ValueError(f"{_FIELD}: cannot read {hp.initial_index!r} as a date") from None
        index = pd.DatetimeIndex(series.index)
        if date > index[-1]:
            raise ValueError(f"{_FIELD}: {hp.initial_index!r} is after the last point of series '{name}' "
                             f"({index[-1]}): nothing is left to predict")
        position = int(index.searchsorted(date, side="right")) - 1  # the last point known on that date
        if position < 0:
            raise ValueError(f"{_FIELD}: {hp.initial_index!r} is before the first point of series '{name}'")
    if position == n - 1:  # TIMEX: "Initial and final index are the same": the last delta points again
        position = n - 1 - hp.delta
    known = position + 1
    test = config.model_parameters.test_size(max(known, 1))
    if known < test + MIN_TRAIN_POINTS:
        raise ValueError(f"{_FIELD}: series '{name}' has only {max(known, 0)} points up to it; the first "
                         f"historical step needs test_values ({test}) + at least {MIN_TRAIN_POINTS} training points")
    if n - known > HISTORY_TAIL_POINTS:
        raise ValueError(f"{_FIELD}: {n - known} points to predict historically in series '{name}', over the "
                         f"{HISTORY_TAIL_POINTS} the answer carries; start later")
    return known


def steps(known: int, points: int, delta: int) -> list[tuple[int, int]]:
    """(points known, points forecast) of every step: every `delta` points from `known` to the end."""
    if known <= 0:
        return []
    return [(end, min(delta, points - end)) for end in range(known, points, delta)]


def plan(config: TimexConfig, points: int, known: int) -> list[UnitSpec]:
    """The historical units of a series (none when `known` is 0), step by step in config order."""
    hp = config.historical_prediction_parameters
    if hp is None or known <= 0:
        return []
    return [UnitSpec(m, t, 0, historical_end=end) for end, _ in steps(known, points, hp.delta)
            for m in config.model_names for t in config.transformations_of(m)]


def plan_all(config: TimexConfig, points: int, name: str, known: int, regressors: Sequence[str] = ()
             ) -> list[UnitSpec]:
    """Every unit of a series: the ordinary ones (forecasting.units, with its additional regressors), then the
    historical ones (univariate)."""
    return plan_units_for(config, points, name, regressors) + plan(config, points, known)


def historical_units(config: TimexConfig, series: pd.Series) -> tuple[int, int]:
    """(units, points predicted) the historical predictions add to a series (0, 0 when `initial_index` does not
    fit it: planning reports that)."""
    try:
        known = first_known(config, series)
    except ValueError:
        return 0, 0
    return len(plan(config, len(series), known)), len(series) - known if known else 0


def run_step(config: TimexConfig, series: pd.Series, spec: UnitSpec, regressors: pd.DataFrame | None = None
             ) -> UnitResult:
    """One historical unit: on the points known at the step, every training window validated, the best
    (lowest main accuracy estimator, then the smaller window) refitted on window + test points and forecast
    over the step's points. Its metrics are that window's validation metrics (the validator compares
    transformations with them); a failure is reported, never raised. A step of the multivariate stage
    (forecasting.historical_multivariate) names its regressors, whose values at the step (history known
    then, and their own forecast over the step's points) are `regressors`."""
    started = time.perf_counter()
    end, hp = spec.historical_end, config.historical_prediction_parameters
    where = f"historical step at {end} points known: "
    if hp is None or not 0 < end < len(series):
        return UnitResult(spec, error=f"{where}outside the series' {len(series)} points")
    known, horizon = series.iloc[:end], min(hp.delta, len(series) - end)
    try:
        windows = sorted({u.window for u in plan_units_for(config, end, str(series.name))})
    except ValueError as exc:
        return UnitResult(spec, error=f"{where}{exc}", fit_seconds=time.perf_counter() - started)
    tried = [run_unit(config, known, UnitSpec(spec.model, spec.transformation, w, spec.regressors),
                      with_forecast=False, regressors=regressors) for w in windows]
    estimator = config.model_parameters.main_accuracy_estimator
    ok = [r for r in tried if r.error is None]
    if not ok:
        return UnitResult(spec, error=f"{where}{tried[0].error}", fit_seconds=time.perf_counter() - started)
    best = min(ok, key=lambda r: (score(r.metrics, estimator), r.spec.window))
    step_config = config.model_copy(update={"model_parameters": config.model_parameters.model_copy(
        update={"prediction_lags": horizon})})
    final = refit_unit(step_config, known, best, regressors)
    seconds = time.perf_counter() - started
    if final.error is not None or final.forecast is None:
        return UnitResult(spec, error=f"{where}{final.error}", fit_seconds=seconds)
    return UnitResult(spec, metrics=dict(best.metrics), forecast=final.forecast, fit_seconds=seconds,
                      params={"window": str(best.spec.window), "points_known": str(end)})


def choose_steps(config: TimexConfig, results: Iterable[UnitResult]) -> dict[str, dict[int, UnitResult]]:
    """Per model and step, the transformation TIMEX keeps: the lowest validation error, ties to the config's
    order; a step where every transformation failed keeps one of its failures. A multivariate step
    (forecasting.historical_multivariate) competes with its model's univariate ones at that step."""
    estimator = config.model_parameters.main_accuracy_estimator
    rank = {t: i for i, t in enumerate(config.transformations)}

    def key(r: UnitResult) -> tuple[bool, float, int, str, bool]:
        failed = r.error is not None or r.forecast is None
        quality = math.inf if failed else score(r.metrics, estimator)
        # A multivariate step is kept only when strictly better (TIMEX): on a tie the univariate one goes first.
        order = rank.get(r.spec.transformation, len(rank))
        return failed, quality, order, r.spec.transformation, bool(r.spec.regressors)

    chosen: dict[str, dict[int, UnitResult]] = {}
    for r in sorted(results, key=key):
        chosen.setdefault(r.spec.model, {}).setdefault(r.spec.historical_end, r)
    return chosen


def collect(config: TimexConfig, results: Iterable[UnitResult], points: int, known: int,
            history: tuple[Sequence[str], Sequence[float]], best_model: str | None) -> dict[str, Any] | None:
    """The answer's `historical_predictions` from the historical units that arrived: per model the forecast
    of every point after the first step's known points, what happened there (from `history`, the end of the
    series the answer carries) and the error of those forecasts (over the points that have both)."""
    hp = config.historical_prediction_parameters
    if hp is None or known <= 0:
        return None
    chosen = choose_steps(config, results)
    stamps, values = list(history[0]), list(history[1])
    count = points - known
    if len(stamps) >= count > 0:  # the series' own timestamps: a step that failed everywhere still shows
        timestamps = stamps[len(stamps) - count:]
    else:
        timestamps = sorted({t for steps_ in chosen.values() for r in steps_.values() if r.forecast
                             for t in r.forecast.timestamps})
    actual_at = dict(zip(stamps, values, strict=True))
    models = {}
    for model in config.model_names:
        forecast_at: dict[str, float] = {}
        errors = []
        kept = []  # what each step's forecast came from (bench/parity.py compares it with TIMEX's choice)
        for end, r in sorted(chosen.get(model, {}).items()):
            if r.forecast is not None and r.error is None:
                forecast_at.update(zip(r.forecast.timestamps, r.forecast.yhat, strict=True))
                kept.append({"points_known": end, "transformation": r.spec.transformation,
                             "regressors": list(r.spec.regressors)})
            else:
                errors.append(r.error or f"historical step at {end} points known: no forecast")
        missing_steps = len(steps(known, points, hp.delta)) - len(chosen.get(model, {}))
        if missing_steps > 0:
            errors.append(f"{missing_steps} historical step(s) did not arrive before the series was decided")
        forecast = [forecast_at.get(t) for t in timestamps]
        actual = [actual_at.get(t) for t in timestamps]
        models[model] = {"timestamps": timestamps, "forecast": forecast, "actual": actual,
                         "metrics": errors_of(actual, forecast), "steps": kept,
                         "error": f"{len(errors)} step(s) without a forecast; first: {errors[0]}" if errors else None}
    return {"initial_index": known - 1, "delta": hp.delta, "models": models, "best_model": best_model}


def errors_of(actual: Sequence[float | None], forecast: Sequence[float | None]) -> dict[str, float]:
    """TIMEX's metrics of past forecasts against what happened, over the points that have both."""
    pairs = [(a, f) for a, f in zip(actual, forecast, strict=True) if a is not None and f is not None]
    if not pairs:
        return {}
    a, f = np.array([p[0] for p in pairs], dtype=float), np.array([p[1] for p in pairs], dtype=float)
    metrics = compute_metrics(a, f, np.array([]))
    return {name: float(metrics[key]) for key, name in _METRICS.items() if math.isfinite(metrics[key])}


def drop_history(results: Iterable[UnitResult]) -> tuple[list[UnitResult], list[UnitResult]]:
    """(ordinary units, historical units): the model choice of the series sees only the ordinary ones."""
    ordinary, past = [], []
    for r in results:
        (past if r.spec.historical_end else ordinary).append(r)
    return ordinary, past



def historical_answer(config: TimexConfig, ref: dict[str, Any] | None, results: Iterable[UnitResult],
                      history: Tail, best_model: str | None) -> dict[str, Any] | None:
    """A BestModel's `historical_predictions` from a series' unit `results` (its historical ones count), its
    `ref` (a SeriesRef) and the end of its `history` (None when none were asked or the series has no ref)."""
    if not ref or not ref.get("historical_from"):
        return None
    return collect(config, drop_history(results)[1], ref["points"], ref["historical_from"], history.wire(),
                   best_model)
