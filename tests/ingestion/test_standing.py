"""A live request at the ingestion (ingestion.standing), without a broker: its standing record and the
"waiting" progress instead of any unit; what it needs checked with a clear failure each. The source topic's
existence on a real broker is checked by tests/live/test_service.py."""

from __future__ import annotations

import json
from typing import Any

from ingestion.ingest import ingest
from ingestion.standing import LiveLimits

CSV = b"date,sales\n" + b"".join(f"2026-01-{d:02d},{d}.0\n".encode() for d in range(1, 11))


def _request(**inputs: Any) -> dict[str, Any]:
    config = {"input_parameters": {"source_topic": "shop-sales", "index_column_name": "date", "frequency": "D",
                                   "live_parameters": {"min_points": 20}, **inputs},
              "model_parameters": {"models": "naive", "main_accuracy_estimator": "mae", "forecast_horizon": 3}}
    return {"request_id": "r1", "config_json": json.dumps(config), "owner": "alice"}


def _no_download(url: str) -> bytes:
    raise AssertionError(f"nothing to download, asked {url}")


def test_a_live_request_is_answered_with_its_standing_record() -> None:
    out = ingest(_request(), _no_download)
    assert out.failures == [] and out.planned == [] and out.stored == []
    (standing,) = out.standing
    assert standing["status"] == "active" and standing["owner"] == "alice" and standing["history_csv"] is None
    assert json.loads(standing["config_json"])["input_parameters"]["source_topic"] == "shop-sales"
    assert [p["stage"] for p in out.progress] == ["accepted", "standing"]
    assert "waiting for 20 points per series" in out.progress[1]["message"]
    assert not [w for w in out.progress[0]["message"].split("; ") if "source_topic" in w]  # no unknown-key warning


def test_the_history_csv_travels_in_the_standing_record() -> None:
    out = ingest({**_request(), "csv_data": CSV}, _no_download)
    assert out.failures == [] and out.standing[0]["history_csv"] == CSV


def test_what_a_live_request_needs_is_checked() -> None:
    def fatal(request: dict[str, Any], **kwargs: Any) -> tuple[str, str]:
        out = ingest(request, _no_download, **kwargs)
        assert out.standing == []
        (failure,) = [f for f in out.failures if f["fatal"]]
        return failure["stage"], failure["message"]

    stage, message = fatal(_request(frequency=None))
    assert stage == "config" and "input_parameters.frequency" in message
    stage, message = fatal(_request(live_parameters={"min_points": 20, "window_points": 500}),
                           live_limits=LiveLimits(max_window_points=100))
    assert stage == "limits" and "TIMEX_LIVE_MAX_WINDOW_POINTS" in message
    two = b"date,sales,visits\n" + b"".join(f"2026-01-{d:02d},{d}.0,{d}\n".encode() for d in range(1, 11))
    stage, message = fatal({**_request(), "csv_data": two}, live_limits=LiveLimits(max_series=1))
    assert stage == "limits" and "2 series" in message and "TIMEX_LIVE_MAX_SERIES" in message
    assert not ingest({**_request(), "csv_data": two}, _no_download, live_limits=LiveLimits(max_series=2)).failures
    stage, message = fatal(_request(), check_topic=lambda name: "no such topic on the cluster")
    assert stage == "source_topic" and "'shop-sales': no such topic" in message
    stage, message = fatal({**_request(), "csv_data": b"date,sales\nnot a date,1\n"})
    assert stage == "data"
