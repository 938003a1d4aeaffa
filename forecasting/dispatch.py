"""One unit of any kind, as a predictor (predictor.work) and the in-process core (forecasting.pipeline) both
run it: a historical step (validated, refitted and forecast in one go: forecasting.historical), a final refit
(forecasting.selection) or an ordinary validation unit (forecasting.units)."""

from __future__ import annotations

import pandas as pd

from forecasting.config import TimexConfig
from forecasting.historical import run_step
from forecasting.selection import final_refit
from forecasting.units import UnitResult, UnitSpec, run_unit


def run(config: TimexConfig, series: pd.Series, spec: UnitSpec, refit: bool = False,
        regressors: pd.DataFrame | None = None) -> UnitResult:
    """The unit `spec` names on `series` (`regressors`: the values of the regressors it names, on the series'
    index and the horizon); a model failure is in the result, never raised."""
    if spec.historical_end:
        return run_step(config, series, spec, regressors)
    if refit:
        return final_refit(config, series, spec, regressors)
    return run_unit(config, series, spec, with_forecast=False, regressors=regressors)
