"""Additional regressors through the services' own code, without Kafka: the ingestion downloads them (with the
SSRF guard), stores each once next to the series (claim check) and plans units with them; the predictor reads
and aligns them; the validator re-plans them and the answer says which were used."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ingestion.download import Allowlist, download
from ingestion.ingest import ingest
from schemas import decode_as, encode
from tests.plugins.ingestion_net import NetGuard
from timex_stream.runtime.decide import add, decide, missing_units, new_series, plan_refits
from timex_stream.runtime.fan_out import Outcome
from timex_stream.runtime.records import units_of
from timex_stream.runtime.results import additional_regressors
from timex_stream.runtime.series_store import MemoryStore, regressor_names
from timex_stream.runtime.unit_work import job_for, predict

N, LAGS = 40, 4


def _frame(n: int, **columns: np.ndarray) -> bytes:
    dates = pd.date_range("2001-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    return pd.DataFrame({"date": dates, **columns}).to_csv(index=False).encode()


def _config(regressors: dict[str, str], models: str = "mockup,naive") -> str:
    return json.dumps({
        "input_parameters": {"source_data_url": "upload:x.csv", "index_column_name": "date", "frequency": "MS"},
        "model_parameters": {"models": models, "test_values": 6, "delta_training_percentage": 50,
                             "prediction_lags": LAGS},
        "additional_regressors": regressors})


# Both series zigzag around 1: mockup (0 without regressors, their number with them) beats naive with one.
ZIGZAG = 0.3 * (-1.0) ** np.arange(N)
SERIES = _frame(N, a=1 + ZIGZAG, b=1 - ZIGZAG)
FILES = {"http://h/all.csv": _frame(N + LAGS, temp=np.linspace(5, 9, N + LAGS)),
         "http://h/short.csv": _frame(N, rain=np.ones(N))}


def _ingest(regressors: dict[str, str], fetch=FILES.__getitem__) -> Outcome:  # type: ignore[no-untyped-def]
    return ingest({"request_id": "r1", "config_json": _config(regressors), "csv_data": SERIES, "replay_of": None},
                  fetch=fetch)


def _wire(record: dict, name: str) -> dict:
    return decode_as(name, encode(name, record))


def test_regressors_are_stored_once_used_by_the_units_and_named_in_the_answer() -> None:
    out = _ingest({"_all": "http://h/all.csv"})
    assert out.failures == []
    store = MemoryStore()
    datasets = [_wire(d, "Dataset") for _, d in out.datasets(store.add(out.stored))]
    regressor_records = [r for r in store.held if r["series"] == "temp"]
    assert len(regressor_records) == 1  # one regressor, two series: stored once
    refs = {d["series"]: d["ref"] for d in datasets}
    assert refs["a"]["regressors"] == refs["b"]["regressors"] != []
    assert regressor_names(refs["a"]) == ("temp",)
    units = [u for d in datasets for u in [d["unit"], *d["more"]] if d["series"] == "a"]
    assert {(u["model"], tuple(u["regressors"])) for u in units} == {("mockup", ()), ("mockup", ("temp",)),
                                                                    ("naive", ())}
    predictions = [_wire(p, "Prediction") for d in datasets if d["series"] == "a"
                   for p in units_of(predict(job_for(store, d)))]
    with_temp = [p for p in predictions if p["unit"]["regressors"]]
    assert with_temp and all(p["error"] is None and p["test_forecast"] == [1.0] * 6 for p in with_temp)
    series = new_series("r1/a", predictions[0], store.config_json(refs["a"]), {})
    # A lost unit is planned again exactly as the ingestion planned it, regressors included.
    replanned = [d["unit"] for _, d in missing_units(series)]
    assert sorted(json.dumps(u, sort_keys=True) for u in replanned) == sorted(json.dumps(u, sort_keys=True)
                                                                             for u in units)
    for p in predictions:
        add(series, p)
    for _, refit in plan_refits(series):
        for p in units_of(predict(job_for(store, _wire(refit, "Dataset")))):
            add(series, _wire(p, "Prediction"))
    record, failures = decide(series)
    record = _wire(record, "BestModel")
    assert failures == [] and record["model"] == "mockup"
    assert record["forecast"]["yhat"] == [1.0] * LAGS  # the one regressor reached the final refit
    assert additional_regressors(record) == ["temp"]


def test_a_series_whose_regressors_do_not_cover_the_horizon_fails_alone() -> None:
    out = _ingest({"_all": "http://h/all.csv", "b": "http://h/short.csv"})
    assert [(f["stage"], f["series"], f["fatal"]) for f in out.failures] == [("regressors", "b", False)]
    assert "'rain' (from http://h/short.csv) has no values for 4 of the 44 dates" in out.failures[0]["message"]
    assert [p.name for p in out.planned] == ["a"]


def test_regressor_urls_go_through_the_ssrf_guard(net_guard: NetGuard) -> None:
    def guarded(url: str) -> bytes:
        return download(url, Allowlist.parse([]), 1000, 5)

    out = _ingest({"_all": "http://10.0.0.1/r.csv"}, fetch=guarded)
    assert [(f["stage"], f["fatal"]) for f in out.failures] == [("regressors", True)] and out.planned == []
    message = out.failures[0]["message"]
    assert message.startswith("the additional regressors at http://10.0.0.1/r.csv cannot be downloaded:")
    assert "private" in message and "source_data_url" not in message
    assert net_guard.connections == []


def test_a_request_without_regressors_answers_none() -> None:
    out = ingest({"request_id": "r2", "config_json": json.dumps({**json.loads(_config({})),
                                                                "additional_regressors": None}),
                  "csv_data": SERIES, "replay_of": None}, fetch=pytest.fail)
    store = MemoryStore()
    ref = out.datasets(store.add(out.stored))[0][1]["ref"]
    assert ref["regressors"] == [] and additional_regressors({"series_ref": ref}) is None


def test_a_replay_of_the_data_keeps_the_regressors_without_downloading_them() -> None:
    from forecasting.config import parse_config
    from timex_stream.runtime.fan_out import accepted, fan_out
    from timex_stream.tools.replay import stored_regressors

    out = _ingest({"_all": "http://h/all.csv"})
    store = MemoryStore()
    first = {d["series"]: d for _, d in out.datasets(store.add(out.stored))}
    parsed = parse_config(store.config_json(first["a"]["ref"]))
    data = {name: store.series(d["ref"], name) for name, d in first.items()}
    regressors = stored_regressors(store, parsed, data, first)
    again = fan_out(Outcome("r2", progress=[accepted("r2", parsed, "r1")]), parsed.config, data, "r1",
                    regressors=regressors)
    assert again.failures == [] and len(again.columns) == 1  # still stored once
    refs = {d["series"]: d["ref"] for _, d in again.datasets(store.add(again.stored))}
    assert regressor_names(refs["a"]) == regressor_names(refs["b"]) == ("temp",)
    assert store.regressors(refs["b"])["temp"].equals(store.regressors(first["b"]["ref"])["temp"])
    # A longer horizon than the stored regressors cover fails those series, in words.
    longer = parse_config({**json.loads(parsed.config.to_json()),
                           "model_parameters": {**json.loads(parsed.config.to_json())["model_parameters"],
                                                "prediction_lags": LAGS + 2}})
    assert "no values for 2 of the 46 dates" in stored_regressors(store, longer, data, first).errors["a"]
