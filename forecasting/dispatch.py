"""One unit of any kind, as a predictor (runtime.unit_work) and the in-process core (forecasting.pipeline) both
run it: a historical step (validated, refitted and forecast in one go: forecasting.historical), a final refit
(forecasting.selection) or an ordinary validation unit (forecasting.units)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from forecasting.config import TimexConfig
from forecasting.historical import run_step
from forecasting.historical_multivariate import step_frame
from forecasting.selection import final_refit
from forecasting.units import UnitResult, UnitSpec, run_unit


def run(config: TimexConfig, series: pd.Series, spec: UnitSpec, refit: bool = False,
        regressors: pd.DataFrame | None = None, columns: Mapping[str, pd.Series] | None = None) -> UnitResult:
    """The unit `spec` names on `series` (`regressors`: the values of the regressors it names, on the series'
    index and the horizon; for a multivariate historical step, `columns`: its regressors' stored values, from
    which its own are made); a model failure is in the result, never raised."""
    if spec.historical_end and spec.regressors:
        try:
            regressors = step_frame(config, spec, pd.DatetimeIndex(series.index), columns or {})
        except ValueError as exc:
            return UnitResult(spec, error=f"historical step at {spec.historical_end} points known: {exc}")
    if spec.historical_end:
        return run_step(config, series, spec, regressors)
    if refit:
        return final_refit(config, series, spec, regressors)
    return run_unit(config, series, spec, with_forecast=False, regressors=regressors)
