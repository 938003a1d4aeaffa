"""`ingest_inline`: a small request whose CSV came with it is ingested on the caller's thread, exactly as
`ingest_safely` ingests it; anything that reaches out (a URL, a live source topic, regressors to download), asks
for a feature slow to prepare, is too large or needs pandas' path for its CSV is left to the thread (None),
before anything is downloaded or checked."""

from __future__ import annotations

import json
from typing import Any

from ingestion.ingest import INLINE_MAX_BYTES, INLINE_MAX_SERIES, ingest_inline, ingest_safely

CSV = b"day,value\n" + b"".join(f"2026-01-{d:02d},{d}.5\n".encode() for d in range(1, 31))
MODELS = {"models": "naive", "main_accuracy_estimator": "mae", "test_values": 5, "prediction_lags": 3}


def _request(csv: bytes | None = CSV, **inputs: Any) -> dict[str, Any]:
    config = {"input_parameters": {"source_data_url": "upload:x.csv", "index_column_name": "day",
                                   "frequency": "D", **inputs}, "model_parameters": MODELS}
    request: dict[str, Any] = {"request_id": "r1", "config_json": json.dumps(config)}
    return {**request, "csv_data": csv} if csv is not None else request


def _never(what: str) -> Any:
    raise AssertionError(f"reached out for {what}")


def _comparable(out: Any) -> tuple[Any, ...]:
    def timeless(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in ("created_at", "at")} for r in records]
    return (timeless([r for _, r in out.stored]), [k for k, _ in out.stored],
            [(p.name, p.units, p.points) for p in out.planned], timeless(out.progress), timeless(out.failures),
            out.in_place)


def test_a_small_uploaded_request_is_ingested_here_as_in_the_thread() -> None:
    request = _request()
    here = ingest_inline(request, fast_lane_work=10_000)
    assert here is not None and here.units > 0 and here.in_place
    assert _comparable(here) == _comparable(ingest_safely(request, _never, fast_lane_work=10_000))


def test_a_bad_config_is_answered_here_and_bad_data_in_the_thread() -> None:
    bad_config = {**_request(), "config_json": "{not json"}
    out = ingest_inline(bad_config)
    assert out is not None and out.failures[0]["stage"] == "config" and out.failures[0]["fatal"]
    bad_data = _request(csv=b"day,value\n2026-01-01,x\n")
    assert ingest_inline(bad_data) is None  # pandas' path says what is wrong with it
    out = ingest_safely(bad_data, _never)
    assert out.failures and out.failures[0]["fatal"] and not out.planned


def test_requests_that_reach_out_or_are_large_go_to_the_thread() -> None:
    assert ingest_inline(_request(csv=None)) is None  # a URL to download
    live = _request(source_topic="shop-sales", live_parameters={"min_points": 20})
    assert ingest_inline(live) is None  # its source topic is checked on the broker
    big = _request(csv=b"day,value\n" + b"2026-01-01,1\n" * (INLINE_MAX_BYTES // 13 + 1))
    assert ingest_inline(big) is None
    wide = INLINE_MAX_SERIES + 1
    many = b"day," + b",".join(b"s%d" % i for i in range(wide)) + b"\n" + b"".join(
        f"2026-01-{d:02d},".encode() + b",".join([b"1"] * wide) + b"\n" for d in range(1, 31))
    assert ingest_inline(_request(csv=many)) is None  # ~0.15 ms a series to prepare
    assert ingest_inline(_request(csv=many.replace(b",s0", b"", 1).replace(b",1\n", b"\n"))) is not None
    day_first = _request(csv=b"day,value\n" + b"".join(f"{d:02d}/01/2026,{d}\n".encode() for d in range(1, 31)))
    assert ingest_inline(day_first) is None  # not forecasting.data's fast path: pandas' may take 100s of ms
    assert ingest_safely(day_first, _never).units > 0  # and the thread reads it
    slow = {"additional_regressors": {"value": "http://127.0.0.1:9/temp.csv"},  # its CSV is downloaded
            "xcorr_parameters": {"xcorr_max_lags": 5, "xcorr_extra_regressor_threshold": 0.0,
                                 "xcorr_mode": "pearson", "xcorr_mode_target": "pearson"},
            "historical_prediction_parameters": {"initial_index": "2026-01-20", "save_path": "h.pkl"}}
    for section, value in slow.items():
        config = {**json.loads(_request()["config_json"]), section: value}
        request = {**_request(), "config_json": json.dumps(config)}
        assert ingest_inline(request) is None, section
        if section != "additional_regressors":  # the thread prepares it
            assert ingest_safely(request, _never).units > 0, section
