"""The `lstm` model (forecasting/models/lstm.py, its JAX network in lstm_net.py): TIMEX's lag window and scaling,
the horizon, reproducibility, the unit pool's time and memory limits, selection through the core, and the clear
failure of an installation without the optional extra. Every fit runs in a worker process (lstm_runs.py says why)."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecasting.models import lstm
from forecasting.models.lstm_net import bucket
from forecasting.pipeline import forecast_all
from forecasting.units import UnitSpec
from forecasting.workers import init_worker
from tests.forecasting import lstm_runs
from tests.plugins.core_series import make_config, random_walk, seasonal_series, to_csv
from timex_stream.runtime.pool import UnitLimitError, UnitPool


@pytest.fixture(scope="module")
def worker() -> Iterator[ProcessPoolExecutor]:
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=init_worker) as pool:
        yield pool


def _forecast(worker: ProcessPoolExecutor, series: pd.Series, h: int, options: dict[str, Any] | None = None,
              exact: bool = False) -> tuple[np.ndarray, dict[str, str]]:
    return worker.submit(lstm_runs.forecast, (series, h, options or {}, exact)).result()


def test_fits_timex_lag_window_and_forecasts_the_horizon_in_the_series_scale(worker: ProcessPoolExecutor) -> None:
    series = seasonal_series(60)
    mean, params = _forecast(worker, series, 8)
    assert params == {"lag_window": "15", "epochs": "10", "hidden_units": "10"}  # round(60 / 4), TIMEX's 10 epochs
    assert mean.shape == (8,) and np.all(np.isfinite(mean))
    # Back in the series' scale (it was trained on values scaled to [-1, 1]): near the data, not near 0.
    assert np.all(np.abs(mean - series.mean()) < np.ptp(series))
    longer, _ = _forecast(worker, series, 20)
    assert longer[:8] == pytest.approx(mean, rel=1e-5)  # recursive: a longer horizon extends the shorter one


def test_training_lowers_the_error(worker: ProcessPoolExecutor) -> None:
    series = seasonal_series(72)
    train, test = series.iloc[:-12], series.iloc[-12:].to_numpy()
    untrained = np.mean(np.abs(_forecast(worker, train, 12, {"epochs": 0})[0] - test))
    trained = np.mean(np.abs(_forecast(worker, train, 12)[0] - test))
    assert trained < 0.5 * untrained


def test_same_data_same_forecast(worker: ProcessPoolExecutor) -> None:
    series = random_walk(48)
    first, _ = _forecast(worker, series, 6)
    assert np.array_equal(first, _forecast(worker, series.copy(), 6)[0])
    assert not np.array_equal(first, _forecast(worker, series.iloc[1:], 6)[0])


def test_padding_to_a_bucket_changes_nothing(worker: ProcessPoolExecutor) -> None:
    assert [bucket(n) for n in (5, 9, 11, 12, 13, 31, 33, 100)] == [5, 10, 12, 12, 14, 32, 40, 112]
    series = seasonal_series(45)  # lag 11 (bucket 12), 34 samples (bucket 40), 7 steps (bucket 7)
    padded, _ = _forecast(worker, series, 7)
    exact, _ = _forecast(worker, series, 7, exact=True)
    np.testing.assert_allclose(padded, exact, rtol=1e-5)


def test_extra_regressors_enter_the_windows_as_timex_s_lstm_takes_them(worker: ProcessPoolExecutor) -> None:
    # `leader` is noise; the series repeats it one month later: only a model that sees the regressor can forecast.
    rng = np.random.default_rng(3)
    index = pd.date_range("2015-01-01", periods=73, freq="MS")
    leader = pd.Series(rng.normal(100, 10, 73), index=index)
    series = leader.shift(1).iloc[1:] + 50
    X = leader.iloc[1:].to_frame("leader")
    train, test, h = series.iloc[:-6], series.iloc[-6:].to_numpy(), 6
    alone, _ = worker.submit(lstm_runs.forecast_with_regressors, (train, None, None, h)).result()
    helped, params = worker.submit(lstm_runs.forecast_with_regressors,
                                   (train, X.iloc[:-6], X.iloc[-6:], h)).result()
    assert params["regressors"] == "leader"
    assert np.mean(np.abs(helped - test)) < 0.6 * np.mean(np.abs(alone - test))
    # The forecast reads the regressors' future values: other values, another forecast (after its first step,
    # which only the known points decide).
    moved, _ = worker.submit(lstm_runs.forecast_with_regressors,
                             (train, X.iloc[:-6], X.iloc[-6:] + 30, h)).result()
    assert moved[0] == pytest.approx(helped[0]) and not np.allclose(moved[1:], helped[1:], rtol=1e-3)


def test_a_unit_runs_in_the_pool_under_a_1_gb_cap_and_stops_at_the_time_limit(
        make_pool: Callable[..., UnitPool]) -> None:
    spec = UnitSpec("lstm", "none", 36)
    roomy = make_pool(size=1, memory_mb=1024, timeout_s=120)
    result = asyncio.run(roomy.run("lstm", lstm_runs.unit, spec))
    assert result.error is None, result.error
    assert result.forecast is not None and len(result.forecast.yhat) == 4 and result.params["lag_window"] == "9"
    # A fresh worker imports JAX and compiles the network first: seconds, far over a 0.2 s limit.
    hurried = make_pool(size=1, memory_mb=1024, timeout_s=0.2)
    with pytest.raises(UnitLimitError) as stopped:
        asyncio.run(hurried.run("lstm", lstm_runs.unit, spec))
    assert stopped.value.limit == "time" and "TIMEX_UNIT_TIMEOUT_S" in str(stopped.value)


def test_takes_part_in_selection_through_the_core() -> None:
    series = seasonal_series(48)
    frame = pd.DataFrame({"date": series.index.strftime("%Y-%m-%d"), "seasonal": series.to_numpy()})
    config = make_config(model_parameters={"models": "lstm,naive", "test_values": 6,
                                           "delta_training_percentage": 100})  # one window: fewer compiles
    choice = forecast_all(config, to_csv(frame), max_workers=1)["seasonal"]
    assert set(choice.per_model) == {"lstm", "naive"} and not choice.errors
    scored = [r for r in choice.comparison if r.spec.model == "lstm"]
    assert scored and all(np.isfinite(r.metrics["MAE"]) for r in scored)
    assert choice.per_model["lstm"].forecast is not None and len(choice.per_model["lstm"].forecast.yhat) == 4
    assert choice.best is not None
    assert choice.best.metrics["MAE"] == min(r.metrics["MAE"] for r in choice.per_model.values())


def test_an_installation_without_jax_fails_the_unit_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lstm, "available", lambda: False)  # refused before JAX is imported: safe in this process
    result = lstm_runs.unit(UnitSpec("lstm", "none", 36))
    assert result.error is not None and "pip install 'timex-stream[lstm]'" in result.error
    assert result.forecast is None
