"""The in-process core (forecasting.pipeline) and the running services give the same answer on a config with
both xcorr_parameters and historical_prediction_parameters: same choice, same multivariate stage, same past
forecasts, the multivariate stage inside the historical steps included (the benches compare the two on such
configs: bench/compute.py's answer check). `mockup` forecasts the number of its regressors: a series around 1
is forecast better with one, so its steps keep their multivariate unit, in both."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from forecasting.config import parse_config
from forecasting.pipeline import forecast_all
from tests.forecasting.test_historical_multivariate import shifted_around_one
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack

TIMEOUT = 240


def test_core_and_services_agree_with_xcorr_and_historical_predictions(
        stack: Stack, producer_: Producer, serve_csv: Callable, config_for: Callable) -> None:
    frame = shifted_around_one()
    config = config_for(serve_csv("core-parity.csv", frame), ["a", "b", "c"], models="mockup,arima",
                        delta_training_percentage=50)
    config["xcorr_parameters"] = {"xcorr_max_lags": 4, "xcorr_extra_regressor_threshold": 0.5,
                                  "xcorr_mode": "pearson", "xcorr_mode_target": "pearson"}
    # 72 monthly points from 2000-01; 2005-08-01 is position 67: points 68..71 predicted, 2 per step.
    config["historical_prediction_parameters"] = {"initial_index": "2005-08-01", "delta": 2,
                                                  "save_path": "historical.pkl"}
    rid = submit(producer_, config)
    core = forecast_all(parse_config(config).config, frame.to_csv(index=False).encode(), max_workers=2)
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    assert view.status == "done", view.to_dict()
    # a's steps kept their multivariate mockup (one regressor: 1.0), c's stayed univariate (0.0).
    assert core["a"].historical["models"]["mockup"]["forecast"] == [1.0] * 4, core["a"]  # type: ignore[index]
    assert core["c"].historical["models"]["mockup"]["forecast"] == [0.0] * 4, core["c"]  # type: ignore[index]
    for name in ("a", "b", "c"):
        ours, theirs = core[name], view.results[name]
        assert ours.best is not None and ours.xcorr is not None
        assert ((ours.best.spec.model, ours.best.spec.transformation, ours.best.spec.window, ours.kept)
                == (theirs["model"], theirs["transformation"], theirs["window"], theirs["kept"])), name
        assert ours.best.metrics == pytest.approx(theirs["metrics"], rel=1e-9), name
        assert ours.best.forecast is not None and ours.best.forecast.yhat == pytest.approx(
            theirs["forecast"]["yhat"], rel=1e-9), name
        assert ours.xcorr["regressors"] == theirs["xcorr"]["regressors"], name
        mv = theirs["multivariate"]
        assert (ours.multivariate is None) == (mv is None), name
        if mv is not None and ours.multivariate is not None:
            assert (ours.multivariate.spec.model, list(ours.multivariate.spec.regressors)) == (
                mv["model"], mv["regressors"]), name
            assert ours.multivariate.metrics == pytest.approx(mv["metrics"], rel=1e-9), name
        assert ours.historical is not None and theirs["historical_predictions"] is not None
        past, served = ours.historical["models"], theirs["historical_predictions"]["models"]
        assert set(past) == set(served) == {"mockup", "arima"}, name
        for model, entry in past.items():
            assert len(entry["forecast"]) == 4 and None not in entry["forecast"], (name, model)
            assert entry["forecast"] == pytest.approx(served[model]["forecast"], rel=1e-9), (name, model)
            assert entry["metrics"] == pytest.approx(served[model]["metrics"], rel=1e-9), (name, model)
