"""Builders for the forecasting-core tests: small synthetic series and configs (no Kafka). A plugin
(tests/conftest.py `pytest_plugins`): the forecasting and validator tests share them."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from forecasting.config import TimexConfig, parse_config

BASE: dict[str, Any] = {
    "input_parameters": {"source_data_url": "data.csv"},
    "model_parameters": {
        "models": "mockup",
        "test_values": 6,
        "delta_training_percentage": 25,
        "prediction_lags": 4,
    },
}


def make_config(**sections: dict[str, Any]) -> TimexConfig:
    raw = copy.deepcopy(BASE)
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse_config(raw).config


def seasonal_series(n: int = 96, period: int = 12, seed: int = 0, freq: str = "MS") -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = (
        100 + 20 * np.sin(2 * np.pi * t / period) + 10 * np.cos(4 * np.pi * t / period) + rng.normal(0, 1, n)
    )
    return pd.Series(values, index=pd.date_range("2010-01-01", periods=n, freq=freq), name="seasonal")


def random_walk(n: int = 80, seed: int = 3) -> pd.Series:
    rng = np.random.default_rng(seed)
    values = 50 + np.cumsum(rng.normal(0, 2, n))
    return pd.Series(values, index=pd.date_range("2015-01-05", periods=n, freq="W-MON"), name="walk")


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def wave_csv() -> bytes:
    """60 monthly points of a yearly wave with noise, column "wave": the validator's and the decision's tests'."""
    t = np.arange(60)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"date": pd.date_range("2001-01-01", periods=60, freq="MS").strftime("%Y-%m-%d"),
                          "wave": 50 + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, 60)})
    return frame.to_csv(index=False).encode()
