"""The multivariate stage inside every historical step, as TIMEX 1.2.3 runs it (`compute_historical_predictions`
calls `get_best_predictions` on the data known at each step: cross-correlation, then the multivariate stage).

At a step of target T (the points T knows then, `UnitSpec.historical_end`), on every series cut at T's last
known date: T's extra regressors are found again (forecasting.xcorr, the request's settings and bounds); each
model that takes regressors is run again with the transformation its univariate step kept, every training
window validated and the best refitted (forecasting.historical.run_step), with each regressor as its history
known then followed by its own forecast of the step's points by the same model (TIMEX's
`prepare_extra_regressor(container, model)`). `choose_steps` keeps the multivariate step where it validated
strictly better than the univariate one, as TIMEX keeps a model's multivariate result.

Pure planning: the in-process core (forecasting.pipeline) runs these units in its pool. Differences from TIMEX:
a regressor's step forecast is its univariate one (TIMEX may take a regressor's multivariate forecast when it
improved before the target's turn, and repeats the stage until nothing improves).
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
from forecasting.xcorr import MAX_CELLS, request_xcorr, xcorr_cells


@dataclass(frozen=True)
class StepUnit:
    """One multivariate historical unit of a series, with the regressor values it is fitted with."""

    spec: UnitSpec
    regressors: pd.DataFrame


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


def plan(config: TimexConfig, target: str, series: Mapping[str, pd.Series],
         step_results: Mapping[str, Sequence[UnitResult]], regressors_at: Mapping[pd.Timestamp, list[str]]
         ) -> list[StepUnit]:
    """The multivariate historical units of `target`: at each of its steps whose date has extra regressors
    (`regressors_at`, by the step's last known date), each model that takes them, with the transformation its
    univariate step kept, fitted with each regressor's history then and its step forecast by that model.
    `step_results`: every series' univariate historical units."""
    s = series[target]
    horizon_of = dict(steps_of(config, s))
    if not horizon_of:
        return []
    chosen = {name: choose_steps(config, results) for name, results in step_results.items()}
    out = []
    for end, horizon in horizon_of.items():
        date = s.index[end - 1]
        names = regressors_at.get(date) or []
        for model in stage.models(config):
            own = chosen.get(target, {}).get(model, {}).get(end)
            if own is None or own.error is not None or not names:
                continue
            values = {}
            for r in names:
                forecast = _step_forecast(chosen.get(r, {}).get(model, {}), series[r], date)
                if forecast is not None:
                    values[r] = pd.concat([series[r][series[r].index <= date], forecast]).rename(r)
            if not values:
                continue
            try:
                frame = align(values, pd.DatetimeIndex(s.index[:end]), horizon)
            except ValueError:  # a regressor's step forecast does not cover the target's step
                continue
            out.append(StepUnit(UnitSpec(model, own.spec.transformation, 0, tuple(values), historical_end=end), frame))
    return out


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


def _step_forecast(per_step: Mapping[int, UnitResult], s: pd.Series, date: pd.Timestamp) -> pd.Series | None:
    """A regressor's own forecast at its step that knows up to `date` (None: it has none)."""
    end = int((s.index <= date).sum())
    found = per_step.get(end)
    if found is None or found.error is not None or found.forecast is None or end == 0 or s.index[end - 1] != date:
        return None
    return pd.Series(found.forecast.yhat, index=pd.DatetimeIndex(pd.to_datetime(found.forecast.timestamps)))
