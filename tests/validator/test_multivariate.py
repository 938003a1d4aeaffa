"""The validator's multivariate stage without Kafka: wait for the regressors, send the multivariate units and
their refit, keep the better, and answer univariately (with a warning) when a regressor never comes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from forecasting.config import parse_config
from forecasting.units import training_windows
from forecasting.xcorr import SeriesXcorr
from tests.forecasting.conftest import BASE as CONFIG
from validator import multivariate as mv
from validator.decide import new_state

REF = {"partition": 1, "config_offset": 3, "offsets": [4], "points": 72, "regressors": []}
FORECAST = {"timestamps": ["2006-01-01T00:00:00"], "yhat": [1.0], "lower_80": None, "upper_80": None,
            "lower_95": None, "upper_95": None}


def _unit(model: str, window: int, index: int, regressors: list[str] | None = None, refit: bool = False
          ) -> dict[str, Any]:
    return {"model": model, "transformation": "none", "window": window, "index": index, "total": 2,
            "refit": refit, "regressors": regressors or []}


def univariate_done_state() -> dict[str, Any]:
    """Series 'a' (extra regressor: 'b'), every univariate unit and refit in: naive MAE 5, arima MAE 4."""
    config = parse_config({**CONFIG, "model_parameters": {**CONFIG["model_parameters"], "models": "naive,arima"},
                           "xcorr_parameters": {"xcorr_max_lags": 2, "xcorr_extra_regressor_threshold": 0.5}}).config
    first = {"request_id": "r", "series": "a", "series_total": 2, "unit": _unit("naive", 36, 0), "ref": REF}
    state = new_state(first, config.to_json())
    state["xcorr"] = SeriesXcorr(2, 0.5, {"pearson": {"b": [0.1, 0.2, 0.3, 0.4, 0.9]}},
                                 {"pearson": [-2, -1, 0, 1, 2]}, ["b"]).to_json()
    for i, (model, mae) in enumerate([("naive", 5.0), ("arima", 4.0)]):
        state["units"][str(i)] = {"unit": _unit(model, 36, i), "error": None, "metrics": {"MAE": mae},
                                  "forecast": None, "fit_seconds": 0.1, "params": {}}
        state["refits"][model] = {"unit": _unit(model, 36, 2 + i, refit=True), "error": None,
                                  "forecast": FORECAST, "fit_seconds": 0.1, "params": {}}
    state["refits_expected"] = 2
    return state


class Sent:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, key: str, record: dict[str, Any]) -> None:
        self.records.append((key, record))


def _prediction(unit: dict[str, Any], mae: float | None = None, error: str | None = None,
                forecast: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"request_id": "r", "series": "a", "unit": unit, "error": error, "metrics": {"MAE": mae} if mae else {},
            "forecast": forecast, "fit_seconds": 0.2, "params": {}}


def _decision(state: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    record = {"model": "arima", "transformation": "none", "window": 36, "metrics": {"MAE": 4.0},
              "forecast": FORECAST}
    return record, mv.answer("r", "a", state, record)


def test_waits_for_its_regressor_then_keeps_the_better_multivariate_model() -> None:
    state, datasets, markers = univariate_done_state(), Sent(), Sent()

    async def flow() -> None:
        assert await mv.hold("r", "a", state, datasets)  # 'b' is not ready: held, nothing sent
        assert datasets.records == []
        ready = mv.ready_marker("r", "a", "b", state, {"partition": 1, "offsets": [9, 10]}, None)
        assert await mv.receive("r/a", ready, state, markers, datasets)
        units = [d["unit"] for _, d in datasets.records] + [u for _, d in datasets.records for u in d["more"]]
        # arima (the model that takes regressors) with its best transformation, every window, regressor 'b'
        assert {(u["model"], u["transformation"], tuple(u["regressors"])) for u in units} == {("arima", "none",
                                                                                              ("b",))}
        assert sorted(u["window"] for u in units) == training_windows(72, 6, 25)
        assert min(u["index"] for u in units) >= mv.BASE
        assert all(d["ref"]["regressors"] == [{"name": "b", "offsets": [9, 10]}] for _, d in datasets.records)
        assert not mv.finished(state)
        for i, u in enumerate(units):
            await mv.receive("r/a", _prediction(u, mae=3.0 - 0.1 * i), state, markers, datasets)
        refit = datasets.records[-1][1]["unit"]
        assert refit["refit"] and refit["window"] == units[-1]["window"] and not mv.finished(state)
        await mv.receive("r/a", _prediction(refit, forecast={**FORECAST, "yhat": [7.0]}), state, markers, datasets)
        assert mv.finished(state) and markers.records == []

    asyncio.run(flow())
    record, failures = _decision(state)
    assert failures == []
    assert record["kept"] == "multivariate" and record["forecast"]["yhat"] == [7.0]
    assert record["univariate"]["metrics"] == {"MAE": 4.0} and record["univariate"]["regressors"] == []
    assert record["multivariate"]["regressors"] == ["b"] and record["metrics"] == record["multivariate"]["metrics"]
    assert record["xcorr"]["regressors"] == ["b"] and "used_by" not in record["xcorr"]


def test_a_regressor_that_never_comes_leaves_the_univariate_answer_with_a_warning() -> None:
    state = univariate_done_state()
    assert asyncio.run(mv.hold("r", "a", state, Sent()))
    record, failures = _decision(state)  # what the deadline decides
    assert record["kept"] == "univariate" and record["multivariate"] is None and record["model"] == "arima"
    assert [f["stage"] for f in failures] == ["xcorr"] and "b did not arrive in time" in failures[0]["message"]


def test_a_regressor_without_forecast_is_named() -> None:
    state, datasets = univariate_done_state(), Sent()
    marker = mv.ready_marker("r", "a", "b", state, None, "'b' has no forecast")
    asyncio.run(mv.receive("r/a", marker, state, Sent(), datasets))
    assert datasets.records == [] and mv.finished(state)
    record, failures = _decision(state)
    assert record["kept"] == "univariate" and "'b' has no forecast" in failures[0]["message"]


def test_a_series_without_xcorr_is_not_held_and_answers_as_before() -> None:
    state = univariate_done_state()
    state["xcorr"] = None
    assert not asyncio.run(mv.hold("r", "a", state, Sent()))
    record, failures = _decision(state)
    assert failures == [] and {k: record[k] for k in ("xcorr", "univariate", "multivariate", "kept")} == {
        "xcorr": None, "univariate": None, "multivariate": None, "kept": None}
    assert json.loads(mv.ready_marker("r", "a", "b", univariate_done_state(), None, "x")["params"]["where"]) is None
