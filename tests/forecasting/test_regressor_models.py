"""The model regressor API (forecasting.models.base): models that take regressors use them where they carry
signal and are barely moved where they are noise; units pass only the spec's columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.models import MODELS
from forecasting.units import UnitSpec, run_unit
from tests.plugins.core_series import make_config

N, TEST, LAGS = 100, 20, 5


def _data(seed: int = 1) -> tuple[pd.Series, pd.DataFrame]:
    """y = 3·signal + 10 + small noise; `noise` is independent of y. Both regressors cover the horizon."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2021-01-04", periods=N + LAGS, freq="D")
    frame = pd.DataFrame({"signal": rng.normal(0, 1, N + LAGS), "noise": rng.normal(0, 1, N + LAGS)}, index=index)
    y = 3 * frame["signal"].iloc[:N] + 10 + rng.normal(0, 0.3, N)
    return y.rename("y"), frame


def _config(model: str):  # type: ignore[no-untyped-def]
    return make_config(model_parameters={"models": model, "test_values": TEST, "prediction_lags": LAGS,
                                         "delta_training_percentage": 80})


def test_which_models_take_regressors() -> None:
    takers = sorted(n for n, cls in MODELS.items() if cls.takes_regressors)
    assert takers == ["arima", "exponentialsmoothing", "fbprophet", "lstm", "mockup"]  # lstm as TIMEX's (test_lstm.py)


@pytest.mark.parametrize("model", ["fbprophet", "arima", "exponentialsmoothing"])
def test_a_regressor_with_signal_improves_the_forecast_and_noise_does_not(model: str) -> None:
    y, frame = _data()
    config = _config(model)
    mae = {}
    for regressors in ((), ("signal",), ("noise",)):
        result = run_unit(config, y, UnitSpec(model, "none", N - TEST, regressors), with_forecast=False,
                          regressors=frame)
        assert result.error is None, result.error
        mae[regressors] = result.metrics["MAE"]
    assert mae[("signal",)] < 0.3 * mae[()]  # y is mostly the signal: the univariate model cannot know it
    assert abs(mae[("noise",)] - mae[()]) < 0.15 * mae[()]


def test_exponential_smoothing_gains_from_a_leading_regressor() -> None:
    """TIMEX's case: y follows a leading indicator x one step later; the extra regressor is x itself (same
    timestamps, as TIMEX passes it) and its known values cover the test points. Holt-Winters alone can only
    extend y's level and trend; regressed on x it follows the swings x announced."""
    rng = np.random.default_rng(2)
    n = N + LAGS + 1
    momentum = np.zeros(n)  # x drifts in runs (AR(1) increments): swings a level-and-trend model cannot see
    for i in range(1, n):
        momentum[i] = 0.9 * momentum[i - 1] + rng.normal(0, 1)
    x = pd.Series(np.cumsum(momentum) + 100, index=pd.date_range("2015-01-01", periods=n, freq="MS"))
    y = (0.8 * x.shift(1) + 20 + rng.normal(0, 0.5, n)).iloc[1:N + 1].rename("y")
    frame = x.iloc[1:].to_frame("leader")
    config = _config("exponentialsmoothing")
    mae = {}
    for regressors in ((), ("leader",)):
        result = run_unit(config, y, UnitSpec("exponentialsmoothing", "none", N - TEST, regressors),
                          with_forecast=False, regressors=frame)
        assert result.error is None, result.error
        mae[regressors] = result.metrics["MAE"]
    assert mae[("leader",)] < 0.5 * mae[()]
    refit = run_unit(config, y, UnitSpec("exponentialsmoothing", "none", N - TEST, ("leader",)), regressors=frame)
    assert refit.forecast is not None and "leader" in refit.params["regression"]


def test_final_forecast_uses_the_regressors_future_values() -> None:
    y, frame = _data()
    result = run_unit(_config("fbprophet"), y, UnitSpec("fbprophet", "none", N - TEST, ("signal",)),
                      regressors=frame)
    assert result.error is None and result.forecast is not None
    expected = 3 * frame["signal"].iloc[N:].to_numpy() + 10
    assert np.max(np.abs(np.array(result.forecast.yhat) - expected)) < 1.0
    assert result.params["regressors"] == "[\"signal\"]"


def test_mockup_forecasts_the_number_of_regressors_as_timex() -> None:
    y, frame = _data()
    config = _config("mockup")
    two = run_unit(config, y, UnitSpec("mockup", "none", N - TEST, ("signal", "noise")), regressors=frame)
    none = run_unit(config, y, UnitSpec("mockup", "none", N - TEST), regressors=frame)
    assert two.test_forecast == [2.0] * TEST and two.forecast is not None and two.forecast.yhat == [2.0] * LAGS
    assert none.test_forecast == [0.0] * TEST


def test_a_model_without_regressor_support_refuses_them() -> None:
    y, frame = _data()
    result = run_unit(_config("naive"), y, UnitSpec("naive", "none", N - TEST, ("signal",)), regressors=frame)
    assert result.error is not None and "takes no regressors" in result.error


def test_regressors_missing_in_the_horizon_fail_the_unit_in_plain_words() -> None:
    y, frame = _data()
    short = frame.iloc[: N + 2]  # 2 of the 5 forecast steps
    result = run_unit(_config("mockup"), y, UnitSpec("mockup", "none", N - TEST, ("signal",)), regressors=short)
    assert result.error is not None and "final refit" in result.error
    assert "no values from 2021-04-16" in result.error
    missing = run_unit(_config("mockup"), y, UnitSpec("mockup", "none", N - TEST, ("rain",)), regressors=frame)
    assert missing.error is not None and "'rain'" in missing.error
