"""Builders of the end-to-end requests: small synthetic monthly series with known structure and a fast config
for them. A plugin (tests/conftest.py `pytest_plugins`): flow, gateway, webapp, corpus, CLI and ingestion tests
share them."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_frame(n: int = 72, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame({
        "date": pd.date_range("2000-01-01", periods=n, freq="MS").strftime("%Y-%m-%d"),
        "seasonal": 100 + 20 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n),
        "walk": 50 + np.cumsum(rng.normal(0, 2, n)),
        "trend": 10 + 0.8 * t + rng.normal(0, 1, n),
        "bumpy": 30 + 5 * np.cos(2 * np.pi * t / 6) + rng.normal(0, 2, n),
        "label": ["x"] * n,
    })


def make_config(url: str, columns: list[str], models: str = "naive,seasonal_naive,exponentialsmoothing",
                **model_parameters: object) -> dict:
    return {
        "activity_title": "e2e",
        "input_parameters": {"source_data_url": url, "columns_to_load_from_url": ",".join(["date", *columns]),
                             "datetime_column_name": "date", "index_column_name": "date", "frequency": "MS"},
        "model_parameters": {"models": models, "possible_transformations": "none", "main_accuracy_estimator": "mae",
                             "test_values": 6, "delta_training_percentage": 25, "prediction_lags": 6,
                             **model_parameters},
    }
