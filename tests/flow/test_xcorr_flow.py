"""TIMEX's cross-correlation stage through the real stack: B is A shifted by K steps (B leads A)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from confluent_kafka import Producer

from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.render import result_document
from timex_stream.tools.stack import Stack

TIMEOUT = 180
K, LAGS, N = 2, 4, 72


def shifted_frame() -> pd.DataFrame:
    """Random levels that change every 7 steps (and 4 steps before the end, inside the held-out points), around
    zero (TIMEX fills the points a shift leaves empty with 0): A cannot see a change coming, B, which is A
    K steps ahead, shows it K steps early."""
    rng = np.random.default_rng(5)
    y = np.zeros(N + K)
    for start in [*range(0, N + K, 7), N - 4]:
        y[start:] = rng.normal(0, 3)
    y += rng.normal(0, 0.2, N + K)
    y -= y.mean()
    return pd.DataFrame({"date": pd.date_range("2000-01-01", periods=N, freq="MS").strftime("%Y-%m-%d"),
                         "a": y[:N], "b": y[K:K + N]})


def test_shifted_series_get_their_lag_and_regressor(stack: Stack, producer_: Producer, serve_csv: Callable,
                                                    config_for: Callable) -> None:
    config = config_for(serve_csv("shifted.csv", shifted_frame()), ["a", "b"], models="naive,arima",
                        delta_training_percentage=50)
    config["xcorr_parameters"] = {"xcorr_max_lags": LAGS, "xcorr_extra_regressor_threshold": 0.5,
                                  "xcorr_modes": "pearson,matlab_normalized", "xcorr_mode_target": "pearson"}
    rid = submit(producer_, config)
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    assert view.status == "done", view.to_dict()
    doc = result_document(view)["results"]
    a, b = doc["a"], doc["b"]
    lags = list(range(-LAGS, LAGS + 1))
    for mode in ("pearson", "matlab_normalized"):
        assert a["xcorr"]["lags"][mode] == lags
        values = a["xcorr"]["modes"][mode]["b"]
        assert lags[int(np.argmax(np.abs(values)))] == K, (mode, values)
    assert a["xcorr"]["regressors"] == ["b"] and b["xcorr"]["regressors"] == []
    # A's multivariate stage (arima with B's history and B's own forecast) beats its univariate best.
    uni, multi = a["univariate"], a["multivariate"]
    assert multi is not None and multi["model"] == "arima" and multi["regressors"] == ["b"], a
    assert multi["metrics"]["MAE"] < uni["metrics"]["MAE"] and uni["regressors"] == []
    assert a["kept"] == "multivariate" and a["model"] == "arima" and a["metrics"] == multi["metrics"]
    assert a["forecast"] == multi["forecast"] and len(multi["forecast"]["yhat"]) == 6
    # B has no regressor: univariate only.
    assert b["kept"] == "univariate" and b["multivariate"] is None and b["model"] == b["univariate"]["model"]
    assert not [f for f in view.failures if f["stage"] == "xcorr"], view.failures
