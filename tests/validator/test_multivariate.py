"""The validator's multivariate stage without Kafka: wait for the regressors, send the multivariate units and
their refit, keep the better, and answer univariately (with a warning) when a regressor never comes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from forecasting.config import parse_config
from forecasting.units import training_windows
from forecasting.xcorr import SeriesXcorr
from tests.plugins.core_series import BASE as CONFIG
from timex_stream.runtime.decide import Series, SeriesState, add, mark_decided, new_series, recount
from validator import multivariate as mv

REF = {"partition": 1, "config_offset": 3, "offsets": [4], "points": 72, "regressors": []}
FORECAST = {"timestamps": ["2006-01-01T00:00:00"], "yhat": [1.0], "lower_80": None, "upper_80": None,
            "lower_95": None, "upper_95": None}


def _unit(model: str, window: int, index: int, regressors: list[str] | None = None, refit: bool = False
          ) -> dict[str, Any]:
    return {"model": model, "transformation": "none", "window": window, "index": index, "total": 2,
            "refit": refit, "regressors": regressors or []}


XCORR = SeriesXcorr(2, 0.5, {"pearson": {"b": [0.1, 0.2, 0.3, 0.4, 0.9]}}, {"pearson": [-2, -1, 0, 1, 2]}, ["b"])


def univariate_done_state(xcorr: SeriesXcorr | None = XCORR) -> Series:
    """Series 'a' (extra regressor: 'b'), every univariate unit and refit in: naive MAE 5, arima MAE 4."""
    config = parse_config({**CONFIG, "model_parameters": {**CONFIG["model_parameters"], "models": "naive,arima"},
                           "xcorr_parameters": {"xcorr_max_lags": 2, "xcorr_extra_regressor_threshold": 0.5}}).config
    first = {"request_id": "r", "series": "a", "series_total": 2, "unit": _unit("naive", 36, 0), "ref": REF}
    series = new_series("r/a", first, config.to_json(), {}, xcorr.to_json() if xcorr else None)
    for i, (model, mae) in enumerate([("naive", 5.0), ("arima", 4.0)]):
        assert add(series, {**_prediction(_unit(model, 36, i), mae=mae), "history_timestamps": [],
                            "history_values": []})
    series.state.refits_expected = 2
    for i, model in enumerate(["naive", "arima"]):
        assert add(series, _prediction(_unit(model, 36, 2 + i, refit=True), forecast=FORECAST))
    return series


class Sent:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def of(self, step: mv.Step) -> bool:
        """Keep the Datasets a step planned (as the service sends them); → the step's flag."""
        self.records += step.datasets
        return step.flag


def _prediction(unit: dict[str, Any], mae: float | None = None, error: str | None = None,
                forecast: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"request_id": "r", "series": "a", "unit": unit, "error": error, "metrics": {"MAE": mae} if mae else {},
            "forecast": forecast, "fit_seconds": 0.2, "params": {}}


def _decision(series: Series) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    record = {"model": "arima", "transformation": "none", "window": 36, "metrics": {"MAE": 4.0},
              "forecast": FORECAST}
    return record, mv.answer(series, record)


def _restarted(series: Series) -> Series:
    """`series` as a validator reads it back after a restart: the state as last written, the parts, recounted."""
    again = Series(series.key, SeriesState.loads(series.state.dumps()), series.parts)
    recount(again)
    return again


def test_waits_for_its_regressor_then_keeps_the_better_multivariate_model() -> None:
    series, datasets, markers = univariate_done_state(), Sent(), Sent()

    async def flow() -> Series:
        s = series
        assert datasets.of(mv.hold(s))  # 'b' is not ready: held, nothing sent
        assert datasets.records == []
        ready = mv.ready_marker("r", "a", "b", s.state, {"partition": 1, "offsets": [9, 10]}, None)
        assert datasets.of(mv.receive(s, ready))
        units = [d["unit"] for _, d in datasets.records] + [u for _, d in datasets.records for u in d["more"]]
        # arima (the model that takes regressors) with its best transformation, every window, regressor 'b'
        assert {(u["model"], u["transformation"], tuple(u["regressors"])) for u in units} == {("arima", "none",
                                                                                              ("b",))}
        assert sorted(u["window"] for u in units) == training_windows(72, 6, 25)
        assert min(u["index"] for u in units) >= mv.BASE
        assert all(d["ref"]["regressors"] == [{"name": "b", "offsets": [9, 10]}] for _, d in datasets.records)
        assert not mv.finished(s)
        half = len(units) // 2
        for i, u in enumerate(units[:half]):
            assert datasets.of(mv.receive(s, _prediction(u, mae=3.0 - 0.1 * i)))
        # A restart: everything the stage needs is read back from the table (state and parts).
        s = _restarted(s)
        assert s.state.mv_done == half and not mv.finished(s)
        # A stall: the units that did not come back are planned and sent again, those alone.
        repair = mv.missing_units(s)
        assert sorted(u["index"] for _, d in repair for u in [d["unit"], *d["more"]]) == sorted(
            u["index"] for u in units[half:])
        again = len(datasets.records)
        assert not datasets.of(mv.receive(s, _prediction(units[0], mae=9.0)))  # a redelivery
        assert s.state.mv_done == half and len(datasets.records) == again
        for i, u in enumerate(units[half:], start=half):
            datasets.of(mv.receive(s, _prediction(u, mae=3.0 - 0.1 * i)))
        refit = datasets.records[-1][1]["unit"]
        assert refit["refit"] and refit["window"] == units[-1]["window"] and not mv.finished(s)
        s = _restarted(s)
        assert [d["unit"] for _, d in mv.missing_units(s)] == [refit]
        datasets.of(mv.receive(s, _prediction(refit, forecast={**FORECAST, "yhat": [7.0]})))
        assert mv.finished(s) and markers.records == [] and mv.missing_units(s) == []
        return s

    series = asyncio.run(flow())
    record, failures = _decision(series)
    assert failures == []
    assert record["kept"] == "multivariate" and record["forecast"]["yhat"] == [7.0]
    assert record["univariate"]["metrics"] == {"MAE": 4.0} and record["univariate"]["regressors"] == []
    assert record["multivariate"]["regressors"] == ["b"] and record["metrics"] == record["multivariate"]["metrics"]
    assert record["xcorr"]["regressors"] == ["b"] and "used_by" not in record["xcorr"]
    # Decided: every part goes (tombstones), the xcorr, the ready marker and the multivariate units too.
    mark_decided(series)
    assert series.parts == {}


def test_a_regressor_that_never_comes_leaves_the_univariate_answer_with_a_warning() -> None:
    series = univariate_done_state()
    assert Sent().of(mv.hold(series))
    record, failures = _decision(series)  # what the deadline decides
    assert record["kept"] == "univariate" and record["multivariate"] is None and record["model"] == "arima"
    assert [f["stage"] for f in failures] == ["xcorr"] and "b did not arrive in time" in failures[0]["message"]


def test_a_regressor_without_forecast_is_named() -> None:
    series, datasets = univariate_done_state(), Sent()
    marker = mv.ready_marker("r", "a", "b", series.state, None, "'b' has no forecast")
    datasets.of(mv.receive(series, marker))
    assert datasets.records == [] and mv.finished(series)
    record, failures = _decision(series)
    assert record["kept"] == "univariate" and "'b' has no forecast" in failures[0]["message"]


def test_a_series_without_xcorr_is_not_held_and_answers_as_before() -> None:
    series = univariate_done_state(xcorr=None)
    assert not Sent().of(mv.hold(series))
    # A marker for it (it takes no regressor) changes nothing: it must not decide the series early.
    marker = mv.ready_marker("r", "a", "b", series.state, None, "x")
    assert not Sent().of(mv.receive(series, marker))
    record, failures = _decision(series)
    assert failures == [] and {k: record[k] for k in ("xcorr", "univariate", "multivariate", "kept")} == {
        "xcorr": None, "univariate": None, "multivariate": None, "kept": None}
    assert json.loads(marker["params"]["where"]) is None
