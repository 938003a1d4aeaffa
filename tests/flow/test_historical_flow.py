"""Historical predictions through the whole flow: planned by the ingestion as units next to the ordinary ones,
run by the predictors, collected by the validator into the answer, shown by the results document."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Producer

from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.render import result_document
from timex_stream.tools.stack import Stack

TIMEOUT = 180


def test_answer_carries_each_models_past_forecasts_and_their_errors(
        stack: Stack, producer_: Producer, serve_csv: Callable, config_for: Callable, frame_: pd.DataFrame) -> None:
    url = serve_csv("historical.csv", frame_)
    config = config_for(url, ["walk"], models="naive,theta")
    # 72 monthly points from 2000-01; 2005-06-01 is position 65: points 66..71 predicted, 2 per step (3 steps).
    config["historical_prediction_parameters"] = {"initial_index": "2005-06-01", "delta": 2,
                                                  "save_path": "/tmp/never-written.pkl"}
    rid = submit(producer_, config)
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    assert view.status == "done", view.to_dict()
    assert any("save_path" in w and "kept with the results" in w for w in view.warnings), view.warnings
    best = view.results["walk"]
    ordinary = len({(r["model"], r["window"]) for r in best["comparison"]})
    assert best["units_total"] == best["units_done"] == ordinary + 3 * 2  # 3 steps × 2 models × 1 transformation

    past = result_document(view)["results"]["walk"]["historical_predictions"]
    assert past["initial_index"] == 65 and past["delta"] == 2 and past["best_model"] == best["model"]
    assert set(past["models"]) == {"naive", "theta"}
    y = frame_["walk"].to_numpy()
    for model, entry in past["models"].items():
        assert len(entry["forecast"]) == len(entry["actual"]) == len(entry["timestamps"]) == 6, model
        assert None not in entry["forecast"] and entry["error"] is None, model
        assert entry["actual"] == pytest.approx(list(y[66:])), model
        assert [t[:10] for t in entry["timestamps"]] == list(frame_["date"][66:]), model
        errors = y[66:] - np.array(entry["forecast"])
        assert entry["metrics"]["mae"] == pytest.approx(np.mean(np.abs(errors))), model
    # naive at each step: the last value known then (points 65, 67, 69), kept for the step's 2 points.
    assert past["models"]["naive"]["forecast"] == pytest.approx([y[65], y[65], y[67], y[67], y[69], y[69]])
