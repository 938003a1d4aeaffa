"""TIMEX's cross-correlation stage through the real stack: B is A shifted by K steps (B leads A)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from confluent_kafka import Producer

from timex_stream.follow import follow
from timex_stream.render import result_document
from timex_stream.stack import Stack
from timex_stream.submit import submit

TIMEOUT = 180
K, LAGS, N = 2, 4, 72


def shifted_frame() -> pd.DataFrame:
    """Smooth zero-mean noise (a moving average): unpredictable from its own past, yet B's today is A's value
    K steps ahead. Zero mean, because TIMEX fills the points a shift leaves empty with 0."""
    rng = np.random.default_rng(3)
    y = 3 * np.convolve(rng.normal(0, 1, N + K + 9), np.ones(10) / 10, mode="valid")[:N + K]
    return pd.DataFrame({"date": pd.date_range("2000-01-01", periods=N, freq="MS").strftime("%Y-%m-%d"),
                         "a": y[:N], "b": y[K:K + N]})


def test_shifted_series_get_their_lag_and_regressor(stack: Stack, producer_: Producer, serve_csv: Callable,
                                                    config_for: Callable) -> None:
    config = config_for(serve_csv("shifted.csv", shifted_frame()), ["a", "b"], models="naive")
    config["xcorr_parameters"] = {"xcorr_max_lags": LAGS, "xcorr_extra_regressor_threshold": 0.5,
                                  "xcorr_modes": "pearson,matlab_normalized", "xcorr_mode_target": "pearson"}
    rid = submit(producer_, config)
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    assert view.status == "done", view.to_dict()
    doc = result_document(view)["series"]
    a, b = doc["a"], doc["b"]
    lags = list(range(-LAGS, LAGS + 1))
    for mode in ("pearson", "matlab_normalized"):
        assert a["xcorr"]["lags"][mode] == lags
        values = a["xcorr"]["modes"][mode]["b"]
        assert lags[int(np.argmax(np.abs(values)))] == K, (mode, values)
    assert a["xcorr"]["regressors"] == ["b"] and b["xcorr"]["regressors"] == []
    assert a["univariate"]["model"] == "naive" and a["kept"] in ("univariate", "multivariate")
