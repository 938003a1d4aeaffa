"""The real unit (timex_stream.runtime.unit_work.predict) on real Dataset records in the real pool: the models
run under the default caps, and a unit over a limit is answered with a valid Prediction whose error names the limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pandas as pd

from forecasting.config import parse_config
from forecasting.units import UnitSpec
from predictor.answer import answer
from schemas.codec import CODEC
from tests.timex_stream.runtime import hostile
from timex_stream.runtime.pool import UnitPool
from timex_stream.runtime.records import dataset
from timex_stream.runtime.series_store import series_ref
from timex_stream.runtime.settings import Settings
from timex_stream.runtime.unit_work import Job

MODELS = ["fbprophet", "arima", "exponentialsmoothing", "theta", "autoets", "naive", "seasonal_naive"]


def _datasets(n: int, models: list[str], freq: str = "D") -> list[Job]:
    """One validation Dataset per model on an `n`-point weekly-seasonal series, as the ingestion builds them,
    with the series and config it points at."""
    t = np.arange(n)
    rng = np.random.default_rng(5)
    series = pd.Series(100 + 10 * np.sin(2 * np.pi * t / 7) + 0.05 * t + rng.normal(0, 1, n),
                       index=pd.date_range("2020-01-01", periods=n, freq=freq), name="load")
    config = parse_config({
        "input_parameters": {"source_data_url": "upload:load.csv", "index_column_name": "date"},
        "model_parameters": {"models": ",".join(models), "test_values": 14, "delta_training_percentage": 100,
                             "prediction_lags": 7, "main_accuracy_estimator": "mae"}}).config
    ref = series_ref(0, 0, [1], n)
    return [Job(dataset("r1", "load", 1, UnitSpec(model, "none", n - 14), i, len(models), ref)[1], series,
                config.to_json()) for i, model in enumerate(models)]


def test_every_model_runs_under_the_default_caps(make_pool: Callable[..., UnitPool]) -> None:
    defaults = Settings()
    pool = make_pool(size=1, memory_mb=defaults.unit_memory_mb, timeout_s=defaults.unit_timeout_s)

    async def scenario() -> tuple[list[dict], float]:
        predictions = [await answer(pool, d) for d in _datasets(300, MODELS)]
        return predictions, await pool.run("peak", hostile.peak_rss_mb, None)

    predictions, peak_mb = asyncio.run(scenario())
    assert [(p["unit"]["model"], p["error"]) for p in predictions] == [(m, None) for m in MODELS]
    assert all(np.isfinite(p["metrics"]["MAE"]) for p in predictions)
    assert pool.replaced == 0 and peak_mb < defaults.unit_memory_mb
    for p in predictions:
        CODEC.encode("Prediction", p)


def test_a_unit_over_the_time_limit_gets_a_prediction_naming_it(make_pool: Callable[..., UnitPool]) -> None:
    pool = make_pool(size=1, timeout_s=1)
    (arima,) = _datasets(300, ["arima"])  # an ARIMA search on 300 points takes several seconds
    prediction = asyncio.run(answer(pool, arima))
    assert prediction["error"] == ("unit exceeded the time limit of 1 s (TIMEX_UNIT_TIMEOUT_S); "
                                   "its worker was replaced")
    assert prediction["unit"] == arima.dataset["unit"] and prediction["request_id"] == "r1"
    CODEC.encode("Prediction", prediction)  # a valid record the validator reads as a failed unit


def test_a_model_over_the_memory_cap_gets_a_prediction_naming_it(make_pool: Callable[..., UnitPool]) -> None:
    pool = make_pool(size=1, memory_mb=700)
    # Holt-Winters on 300,000 hourly points allocates (n, 88) float arrays: far over 700 MB of address space.
    (big,) = _datasets(300_000, ["exponentialsmoothing"], freq="h")

    async def scenario() -> tuple[dict, dict]:
        return await answer(pool, big), await answer(pool, _datasets(60, ["naive"])[0])

    prediction, after = asyncio.run(scenario())
    assert prediction["error"].startswith("unit exceeded the memory limit of 700 MB (TIMEX_UNIT_MEMORY_MB); "
                                          "its worker was replaced")
    assert after["error"] is None and pool.replaced == 1
    CODEC.encode("Prediction", prediction)


def test_the_predictor_unit_reads_arima_seasonal_from_the_shipped_config() -> None:
    """model_parameters.arima_seasonal false reaches the model through the config the services ship (to_json,
    read back by timex_stream.runtime.unit_work.predict): TIMEX's non-seasonal search on a monthly seasonal series."""
    from timex_stream.runtime.unit_work import predict

    n = 60
    t = np.arange(n)
    series = pd.Series(100 + 20 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(1).normal(0, 1, n),
                       index=pd.date_range("2015-01-01", periods=n, freq="MS"), name="sales")
    config = parse_config({
        "input_parameters": {"source_data_url": "upload:sales.csv", "index_column_name": "month"},
        "model_parameters": {"models": "arima", "test_values": 12, "prediction_lags": 6,
                             "arima_seasonal": False}}).config
    job = Job(dataset("r1", "sales", 1, UnitSpec("arima", "none", n - 12), 0, 1, series_ref(0, 0, [1], n))[1],
              series, config.to_json())
    prediction = predict(job)
    assert prediction["error"] is None, prediction["error"]
    assert prediction["params"]["search"].startswith("TIMEX 1.2.3"), prediction["params"]
    assert "[" not in prediction["params"]["order"]
    CODEC.encode("Prediction", prediction)
