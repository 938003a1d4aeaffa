"""The results document (what the CLI prints, the gateway downloads and the webapp draws), from BestModel records."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from forecasting.series import Tail
from timex_stream.runtime.plain import plain
from timex_stream.runtime.records import for_users
from timex_stream.runtime.request_view import RequestView
from timex_stream.runtime.results import COMPARISON_KEYS, results_json, series_entry
from timex_stream.tools.render import result_document, series_entries

STAMPS = ["2020-01-01T00:00:00.000000", "2020-02-01T00:00:00.000000"]
BEST: dict[str, Any] = {
    "request_id": "r1", "series": "x", "model": "naive", "transformation": "none", "window": 12,
    "main_accuracy_estimator": "mae", "metrics": {"MAE": 1.5}, "forecast": None, "complete": True,
    "history_timestamps": [], "history_values": [],  # v6: packed
    **dict(zip(("history_timestamps_us", "history_values_f64"), Tail.from_wire(STAMPS, [1.0, 2.0]).packed(),
               strict=True)),
    "comparison": [{"model": "naive", "transformation": "none", "window": 12, "metrics": {"MAE": 1.5},
                    "fit_seconds": 0.1, "params": {"p": 1}, "error": None, "best_of_model": True}],
    "units_done": 1, "units_total": 1, "decided_at": 5,
}


def test_entry_carries_the_history_and_the_comparison_without_model_params() -> None:
    entry = series_entry(for_users(BEST))
    assert entry["history"] == {"timestamps": STAMPS, "values": [1.0, 2.0]}
    assert entry["comparison"] == [{k: BEST["comparison"][0][k] for k in COMPARISON_KEYS}]
    assert "params" not in entry["comparison"][0]
    assert series_entry({})["history"] is None and series_entry({})["comparison"] is None  # not answered yet


def test_document_and_download_give_the_same_entry_and_the_visualization() -> None:
    view = RequestView("r1", series_names=["x", "y"], visualization={"language": "it", "xcorr_graph_threshold": 0.3})
    view.results["x"] = BEST
    doc = result_document(view)
    assert doc["visualization"] == {"language": "it", "xcorr_graph_threshold": 0.3}
    assert doc["results"]["x"]["history"]["values"] == [1.0, 2.0] and "y" not in doc["results"]  # y: not yet
    assert doc["series"] == ["x", "y"] and series_entries(view)["y"]["history"] is None
    download = results_json(view.to_dict())
    assert download["visualization"] == doc["visualization"]
    assert download["results"]["x"]["history_values"] == [1.0, 2.0]  # the old fields stay, the packed ones go
    assert download["results"]["x"]["history_timestamps"] == STAMPS and "history_values_f64" not in str(download)
    assert plain(download) == doc  # the CLI prints the gateway's download


def test_one_plain_json_for_http_and_cli() -> None:
    """Avro timestamps become epoch ms, NaN and infinities null, bytes text: strict JSON a browser parses."""
    failure = {"request_id": "r1", "stage": "model", "message": "m", "series": "x", "model": None, "fatal": False,
               "detail": None, "occurred_at": datetime(2026, 1, 2, tzinfo=UTC)}
    view = RequestView("r1", series_names=["x"], warnings=["w"])
    view.results["x"] = {**BEST, "metrics": {"MAE": math.nan, "MSE": math.inf}}
    view.apply("failures", failure)
    doc = result_document(view)
    assert doc["failures"][0]["occurred_at"] == 1767312000000 and doc["results"]["x"]["metrics"] == {
        "MAE": None, "MSE": None}
    assert doc["warnings"] == ["w"] and doc["results"]["x"]["failures"] == [
        {"stage": "model", "series": "x", "model": None, "message": "m", "fatal": False}]
    json.dumps(doc, allow_nan=False)
    assert plain({"csv": b"a,b"}) == {"csv": "a,b"}


def test_an_answer_is_made_readable_once_and_again_only_when_a_newer_one_comes() -> None:
    view = RequestView("r1", series_names=["x"])
    view.results["x"] = BEST
    first = view.to_dict()["results"]["x"]
    assert first["history_timestamps"] == STAMPS and view.to_dict()["results"]["x"] is first  # not made again
    view.results["x"] = {**BEST, "decided_at": 6}
    assert view.to_dict()["results"]["x"] is not first and view.shown("x")["decided_at"] == 6
