"""The results document's per-series entry (what the CLI prints and the webapp draws), from BestModel records."""

from __future__ import annotations

from typing import Any

from timex_stream.render import COMPARISON_KEYS, result_document, series_entry
from timex_stream.request_view import RequestView
from timex_stream.results import results_json

BEST: dict[str, Any] = {
    "request_id": "r1", "series": "x", "model": "naive", "transformation": "none", "window": 12,
    "main_accuracy_estimator": "mae", "metrics": {"MAE": 1.5}, "forecast": None, "complete": True,
    "history_timestamps": ["2020-01-01T00:00:00", "2020-02-01T00:00:00"], "history_values": [1.0, 2.0],
    "comparison": [{"model": "naive", "transformation": "none", "window": 12, "metrics": {"MAE": 1.5},
                    "fit_seconds": 0.1, "params": {"p": 1}, "error": None, "best_of_model": True}],
    "units_done": 1, "units_total": 1, "decided_at": 5,
}


def test_entry_carries_the_history_and_the_comparison_without_model_params() -> None:
    entry = series_entry(BEST)
    assert entry["history"] == {"timestamps": BEST["history_timestamps"], "values": [1.0, 2.0]}
    assert entry["comparison"] == [{k: BEST["comparison"][0][k] for k in COMPARISON_KEYS}]
    assert "params" not in entry["comparison"][0]
    assert series_entry({})["history"] is None and series_entry({})["comparison"] is None  # not answered yet


def test_document_and_download_give_the_same_entry_and_the_visualization() -> None:
    view = RequestView("r1", series_names=["x", "y"], visualization={"language": "it", "xcorr_graph_threshold": 0.3})
    view.results["x"] = BEST
    doc = result_document(view)
    assert doc["visualization"] == {"language": "it", "xcorr_graph_threshold": 0.3}
    assert doc["series"]["x"]["history"]["values"] == [1.0, 2.0] and doc["series"]["y"]["history"] is None
    download = results_json({**view.to_dict(), "results": view.results})
    assert download["visualization"] == doc["visualization"]
    assert {k: download["results"]["x"][k] for k in doc["series"]["x"]} == doc["series"]["x"]
    assert download["results"]["x"]["history_values"] == [1.0, 2.0]  # the old fields stay
