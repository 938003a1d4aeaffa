"""What tests/forecasting/test_lstm.py runs in worker processes: JAX starts threads, and a process that forks after
that can deadlock its child, so the test process does not fit an LSTM itself (fewer threads in the test process,
which forks test services and, in other tests, pools)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecasting.models import get_model_class, lstm_net
from forecasting.units import UnitResult, UnitSpec, run_unit
from tests.plugins.core_series import make_config, seasonal_series


def forecast(job: tuple[pd.Series, int, dict[str, Any], bool]) -> tuple[np.ndarray, dict[str, str]]:
    """(series, h, options, exact): the lstm's forecast and params; `exact`: shapes not padded to buckets."""
    series, h, options, exact = job
    padded = lstm_net.bucket
    if exact:
        lstm_net.bucket = lambda n: n
    try:
        model = get_model_class("lstm")(season_length=12, options=options).fit(series)
        return model.predict(h).mean, model.params()
    finally:
        lstm_net.bucket = padded


def forecast_with_regressors(job: tuple[pd.Series, pd.DataFrame | None, pd.DataFrame | None, int]
                             ) -> tuple[np.ndarray, dict[str, str]]:
    """(series, X, X_future, h): the lstm's forecast and params, fitted with the regressors X (or none)."""
    series, X, X_future, h = job
    model = get_model_class("lstm")(season_length=12).fit(series, X)
    return model.predict(h, X_future=X_future).mean, model.params()


def unit(spec: UnitSpec) -> UnitResult:
    """One lstm unit of a 48-point monthly series (6 test points, 4 forecast steps)."""
    return run_unit(make_config(model_parameters={"models": "lstm", "test_values": 6}), seasonal_series(48), spec)
