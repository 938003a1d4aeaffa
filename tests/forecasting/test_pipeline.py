from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.pipeline import forecast_all
from forecasting.selection import choose_best
from forecasting.units import plan_units, run_unit
from tests.plugins.core_series import make_config, random_walk, seasonal_series, to_csv


def test_pool_gives_the_serial_answer_and_keeps_data_errors() -> None:
    seasonal, walk = seasonal_series(48), random_walk(48)
    frame = pd.DataFrame(
        {
            "date": seasonal.index.strftime("%Y-%m-%d"),
            "seasonal": seasonal.to_numpy(),
            "walk": walk.to_numpy(),
            "words": ["w"] * 48,
        }
    )
    config = make_config(
        model_parameters={
            "models": "naive,seasonal_naive,theta",
            "possible_transformations": "none,log_modified",
        }
    )
    choices = forecast_all(config, to_csv(frame), max_workers=2)
    assert choices["words"].best is None and "non-numeric" in (choices["words"].data_error or "")
    for name in ("seasonal", "walk"):
        series = pd.Series(frame[name].to_numpy(), index=seasonal.index, name=name)
        serial = choose_best(config, [run_unit(config, series, s) for s in plan_units(config, series)])
        pooled = choices[name]
        assert pooled.best is not None and serial.best is not None
        assert pooled.best.spec == serial.best.spec
        # Values crossed a CSV text round trip: equal up to float parsing.
        assert pooled.best.metrics == pytest.approx(serial.best.metrics, rel=1e-9)
        assert pooled.best.forecast is not None and serial.best.forecast is not None
        np.testing.assert_allclose(pooled.best.forecast.yhat, serial.best.forecast.yhat)
        assert set(pooled.per_model) == {"naive", "seasonal_naive", "theta"}
        assert all(r.forecast is not None for r in pooled.per_model.values())
