"""Additional regressors end to end on the real broker and services: downloaded from a CSV server on
127.0.0.1, stored once on `series`, used by the units of the models that take them, named in the answer."""

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
N, LAGS = 40, 4


def _dates(n: int) -> list[str]:
    return list(pd.date_range("2001-01-01", periods=n, freq="MS").strftime("%Y-%m-%d"))


def test_additional_regressors_reach_the_models_and_the_answer(stack: Stack, producer_: Producer,
                                                               serve_csv: Callable) -> None:
    zigzag = 0.3 * (-1.0) ** np.arange(N)  # around 1: mockup with its one regressor (forecast 1) beats naive
    data = serve_csv("reg-series.csv", pd.DataFrame({"date": _dates(N), "a": 1 + zigzag, "b": 1 - zigzag}))
    shared = serve_csv("reg-all.csv", pd.DataFrame({"date": _dates(N + LAGS), "temp": np.linspace(5, 9, N + LAGS)}))
    short = serve_csv("reg-short.csv", pd.DataFrame({"date": _dates(N), "rain": np.ones(N)}))  # no horizon
    config = {
        "activity_title": "regressors",
        "input_parameters": {"source_data_url": data, "index_column_name": "date", "frequency": "MS"},
        "model_parameters": {"models": "mockup,naive", "test_values": 6, "delta_training_percentage": 50,
                             "prediction_lags": LAGS},
        "additional_regressors": {"_all": shared, "b": short},
    }
    rid = submit(producer_, config)
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    assert view.status == "done", view.to_dict()
    doc = result_document(view)["results"]
    assert doc["a"]["model"] == "mockup" and doc["a"]["additional_regressors"] == ["temp"]
    assert doc["a"]["forecast"]["yhat"] == [1.0] * LAGS  # TIMEX's mockup forecasts how many regressors it got
    rows = view.results["a"]["comparison"]
    assert {r["params"].get("regressors") for r in rows if r["model"] == "mockup"} == {None, '["temp"]'}
    assert [(f["stage"], f["series"]) for f in view.failures] == [("regressors", "b")]
    assert "'rain'" in view.failures[0]["message"] and short in view.failures[0]["message"]
    assert "b" not in view.results
