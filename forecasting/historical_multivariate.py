"""The multivariate stage inside every historical step, as TIMEX 1.2.3 runs it (`compute_historical_predictions`
calls `get_best_predictions` on the data known at each step: cross-correlation, then the multivariate stage).

At a step of target T (the points T knows then, `UnitSpec.historical_end`), on every series cut at T's last
known date: T's extra regressors are found again (forecasting.xcorr, the request's settings and bounds); each
model that takes regressors is run again with the transformation its univariate step kept, every training
window validated and the best refitted (forecasting.historical.run_step), with each regressor as its history
known then followed by its own forecast of the step's points by the same model (TIMEX's
`prepare_extra_regressor(container, model)`). `choose_steps` keeps the multivariate step where it validated
strictly better than the univariate one, as TIMEX keeps a model's multivariate result.

Pure planning, shared: the ingestion finds the regressors of every step (`regressors_by_step`, kept with each
series' xcorr); a regressor's validator, once it is decided, stores its step forecasts per model
(`step_forecasts`, under `steps_column`s) and tells its targets which dates have one; the target's validator
plans the units (`plan`) and a predictor builds their regressor values (`step_frame`). The in-process core
(forecasting.pipeline) calls the same four. Differences from TIMEX: a regressor's step forecast is its
univariate one (TIMEX may take a regressor's multivariate forecast when it improved before the target's turn,
and repeats the stage until nothing improves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from forecasting import multivariate as stage
from forecasting.config import TimexConfig
from forecasting.historical import choose_steps, first_known, steps
from forecasting.regressors import align
from forecasting.units import UnitResult, UnitSpec
from forecasting.xcorr import MAX_CELLS, SeriesXcorr, request_xcorr, xcorr_cells


def units_bound(config: TimexConfig, s: pd.Series) -> int:
    """At most how many multivariate historical units series `s` adds (every step, every model that takes
    regressors), for the request limits; 0 without xcorr_parameters or historical predictions."""
    if config.xcorr_parameters is None:
        return 0
    return len(steps_of(config, s)) * len(stage.models(config))


def regressors_by_step(config: TimexConfig, series: Mapping[str, pd.Series]
                       ) -> tuple[dict[str, dict[pd.Timestamp, list[str]]], str | None]:
    """Per series, its extra regressors at the date of each historical step of any series (every series cut
    there: TIMEX's `ingested_data[:current_index]`), and a warning in plain words when the request's xcorr
    bound refuses the work (then none: the steps stay univariate). Empty without xcorr_parameters, historical
    predictions or a model that takes regressors."""
    if (len(series) < 2 or config.xcorr_parameters is None or config.historical_prediction_parameters is None
            or not stage.models(config)):
        return {}, None
    dates = sorted({s.index[end - 1] for s in series.values() for end, _ in steps_of(config, s)})
    if not dates:
        return {}, None
    if xcorr_cells(config, series) * (len(dates) + 1) > MAX_CELLS:
        return {}, (f"xcorr_parameters: re-running the cross-correlation at each of the {len(dates)} historical "
                    "steps is more work than one request may ask for; the historical steps are univariate (use "
                    "fewer series, a larger delta or a later initial_index)")
    out: dict[str, dict[pd.Timestamp, list[str]]] = {}
    for date in dates:
        known = {name: s[s.index <= date] for name, s in series.items()}
        found, _ = request_xcorr(config, {name: s for name, s in known.items() if len(s)})
        for name, x in found.items():
            out.setdefault(name, {})[date] = list(x.regressors)
    return out, None


Steps = dict[int, tuple[pd.Timestamp, list[str]]]  # a series' steps with regressors: end → (date known, names)


def steps_with_regressors(config: TimexConfig, s: pd.Series, at: Mapping[pd.Timestamp, Sequence[str]]) -> Steps:
    """Series `s`'s historical steps whose date has extra regressors (`at`: one series' `regressors_by_step`)."""
    out: Steps = {}
    for end, _ in steps_of(config, s):
        date = s.index[end - 1]
        if at.get(date):
            out[end] = (date, list(at[date]))
    return out


def add_steps(config: TimexConfig, series: Mapping[str, pd.Series], xcorr: Mapping[str, SeriesXcorr],
              by_step: Mapping[str, Mapping[pd.Timestamp, Sequence[str]]]) -> None:
    """Keep each series' steps with regressors in its xcorr (what travels to its validator), and each such
    regressor among the series it is used by, so that it tells them its step forecasts."""
    for name, at in by_step.items():
        if name not in xcorr:
            continue
        found = steps_with_regressors(config, series[name], at)
        xcorr[name].steps = {str(end): {"date": date.isoformat(), "regressors": names}
                             for end, (date, names) in found.items()}
        for r in {r for _, names in found.values() for r in names}:
            if r in xcorr and name not in xcorr[r].used_by:
                xcorr[r].used_by.append(name)


def steps_in(found: SeriesXcorr | None) -> Steps:
    """A series' steps with regressors, as `add_steps` kept them in its xcorr."""
    kept = found.steps if found else {}
    return {int(end): (pd.Timestamp(v["date"]), list(v["regressors"])) for end, v in kept.items()}


STEPS_COLUMN = "\x1fsteps\x1f"  # joins a regressor's name and a model's: the column of its step forecasts


def steps_column(regressor: str, model: str) -> str:
    """The name under which a regressor's step forecasts by `model` travel (never a series' own name)."""
    return f"{regressor}{STEPS_COLUMN}{model}"


@dataclass(frozen=True)
class StepForecasts:
    """A regressor's own historical forecasts by one model: the dates known at its steps that have one, and
    every such step's forecast, end to end (steps never overlap)."""

    dates: list[pd.Timestamp]
    values: pd.Series


def step_forecasts(config: TimexConfig, s: pd.Series, results: Sequence[UnitResult]) -> dict[str, StepForecasts]:
    """Per model that takes regressors, series `s`'s univariate step forecasts (its historical `results`, the
    transformation each step kept: forecasting.historical.choose_steps)."""
    chosen = choose_steps(config, [r for r in results if r.spec.historical_end and not r.spec.regressors])
    out = {}
    for model in stage.models(config):
        good = [(end, r) for end, r in sorted(chosen.get(model, {}).items())
                if r.error is None and r.forecast is not None and 0 < end <= len(s)]
        if not good:
            continue
        stamps = [t for _, r in good for t in r.forecast.timestamps]  # type: ignore[union-attr]
        yhat = [v for _, r in good for v in r.forecast.yhat]  # type: ignore[union-attr]
        out[model] = StepForecasts([s.index[end - 1] for end, _ in good],
                                   pd.Series(yhat, index=pd.DatetimeIndex(pd.to_datetime(stamps)), name=s.name))
    return out


def plan(config: TimexConfig, results: Sequence[UnitResult], steps: Steps,
         ready: Mapping[str, Mapping[str, Sequence[pd.Timestamp]]]) -> list[UnitSpec]:
    """The multivariate historical units of a series: at each of its steps with extra regressors (`steps`),
    each model that takes them, with the transformation its univariate step kept (`results`: its historical
    units), fitted with each regressor that has a step forecast by that model at that date (`ready`:
    regressor → model → dates of its step forecasts)."""
    chosen = choose_steps(config, [r for r in results if r.spec.historical_end and not r.spec.regressors])
    out = []
    for end, (date, names) in sorted(steps.items()):
        for model in stage.models(config):
            own = chosen.get(model, {}).get(end)
            usable = tuple(r for r in names if date in (ready.get(r) or {}).get(model, ()))
            if own is not None and own.error is None and usable:
                out.append(UnitSpec(model, own.spec.transformation, 0, usable, historical_end=end))
    return out


def step_frame(config: TimexConfig, spec: UnitSpec, index: pd.DatetimeIndex, columns: Mapping[str, pd.Series]
               ) -> pd.DataFrame:
    """The regressor values a multivariate historical unit is fitted with: each regressor's history known at
    the step, then its own step forecast by the unit's model (`columns`: each regressor's stored history and
    its `steps_column`s), on the points known then and the step's points. A RegressorError (a ValueError)
    when they do not cover them."""
    hp = config.historical_prediction_parameters
    end = spec.historical_end
    if hp is None or not 0 < end < len(index):
        raise ValueError(f"historical step at {end} points known: outside the series' {len(index)} points")
    date = index[end - 1]
    values = {}
    for r in spec.regressors:
        history, future = columns.get(r), columns.get(steps_column(r, spec.model))
        if history is None or future is None:
            raise ValueError(f"no values for the regressor {r!r} at the historical step at {date}")
        values[r] = pd.concat([history[history.index <= date], future[future.index > date]]).rename(r)
    return align(values, pd.DatetimeIndex(index[:end]), min(hp.delta, len(index) - end))


def steps_of(config: TimexConfig, s: pd.Series) -> list[tuple[int, int]]:
    """(points known, points forecast) of every historical step of `s` (none when it has no historical
    predictions)."""
    hp = config.historical_prediction_parameters
    if hp is None:
        return []
    try:
        known = first_known(config, s)
    except ValueError:
        return []
    return steps(known, len(s), hp.delta)
