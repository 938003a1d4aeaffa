"""Live models by model keyword: `live_model(fitted, y)` gives the per-point updater of a fitted model,
`load(data)` resumes one from its bytes. What each kind does per point:

| model                 | per point                                                              | cost a point   |
|-----------------------|------------------------------------------------------------------------|----------------|
| naive, persistence    | last value, running Σ residual² (statsforecast's sigma): exact         | O(1)           |
| seasonal_naive        | last season, running Σ residual²: exact                                | O(1)           |
| autoets, autoets_damped | statsforecast's ETS equations from the last state, running sigma²: exact | O(1)       |
| arima                 | one Kalman step (statsforecast's filter) from the last state: exact    | O(state²)      |
| theta                 | the fit's equations from the last state, its seasonal factors continued | O(1)          |
| exponentialsmoothing, fbprophet, arima with regressors | refit every 50 points on the last 1,000    | a fit / 50     |

The live service runs the refits in its unit pool, never on its event loop (forecasting.live.models.refit).

A revision's forecast is clipped and rounded as a CSV's (min_values, max_values, round_to_integer) by
forecasting.live.follow, with forecasting.units' `_adjust_by`.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from forecasting.live.models.arima import LiveARIMA
from forecasting.live.models.base import LiveModel, NotUpdatable
from forecasting.live.models.ets import LiveETS
from forecasting.live.models.naive import LiveNaive, LiveSeasonalNaive
from forecasting.live.models.refit import LiveRefit
from forecasting.live.models.theta import LiveTheta
from forecasting.models.base import ForecastModel

LIVE_MODELS: dict[str, type[LiveModel]] = {
    "naive": LiveNaive, "persistence": LiveNaive, "seasonal_naive": LiveSeasonalNaive, "autoets": LiveETS,
    "autoets_damped": LiveETS,  # the same ETS equations: its fit only restricts the trend to damped ones
    "arima": LiveARIMA, "theta": LiveTheta,
}
_KINDS: dict[str, type[LiveModel]] = {cls.kind: cls for cls in (*LIVE_MODELS.values(), LiveRefit)}


def live_model(fitted: ForecastModel, y: pd.Series) -> LiveModel:
    """The live form of `fitted` (fitted on `y`): its own updater, else refits."""
    cls = LIVE_MODELS.get(fitted.name)
    if cls is not None:
        try:
            return cls.from_fitted(fitted, y.to_numpy(dtype=float))
        except NotUpdatable:
            pass
    return LiveRefit.from_fitted(fitted, y)


def load(data: bytes) -> LiveModel:
    state: dict[str, Any] = json.loads(data)
    return _KINDS[state.pop("kind")].from_state(state)


__all__ = ["LIVE_MODELS", "LiveModel", "NotUpdatable", "live_model", "load"]
