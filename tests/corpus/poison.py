"""Poison payloads for any topic: random bytes, a truncated single-object record, and a record written by a
schema newer than this build (same record name, one more field: its fingerprint is unknown here)."""

from __future__ import annotations

import io
import json
import random
from typing import Any

from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from forecasting.units import UnitSpec
from schemas import BY_NAME, encode
from schemas.codec import CODEC, HEADER_LEN, MAGIC
from timex_stream.runtime.records import dataset, failure, progress
from timex_stream.runtime.series_store import series_ref
from timex_stream.runtime.submit import forecast_request
from timex_stream.runtime.unit_work import prediction_record


def sample(record: str, rid: str) -> dict[str, Any]:
    """A valid record of type `record` for request `rid`."""
    ref = series_ref(0, 0, [1], 24)
    _, ds = dataset(rid, "walk", 1, UnitSpec("naive", "none", 10), 0, 1, ref)
    return {
        "ForecastRequest": lambda: forecast_request({"activity_title": "poison"}, request_id=rid),
        "Dataset": lambda: ds,
        "Prediction": lambda: prediction_record(ds),
        "Failure": lambda: failure(rid, "data", "poison"),
        "Progress": lambda: progress(rid, "accepted"),
        "BestModel": lambda: {
            "request_id": rid, "series": "walk", "series_total": 1, "model": None, "transformation": None,
            "window": None, "main_accuracy_estimator": "mae", "metrics": {}, "forecast": None, "per_model": {},
            "comparison": [], "history_timestamps": [], "history_values": [], "history_timestamps_us": b"",
            "history_values_f64": b"", "history_points": 0, "series_ref": None,
            "units_done": 1, "units_total": 1,
            "complete": True, "decided_at": 0},
    }[record]()


def too_new(record: str, values: dict[str, Any]) -> bytes:
    """`values` single-object encoded by a later version of `record`'s schema (one more field)."""
    newer = json.loads(to_parsing_canonical_form(CODEC.current[record].parsed))
    newer["fields"].append({"name": "added_in_a_later_version", "type": "string"})
    parsed = parse_schema(newer)
    buf = io.BytesIO()
    buf.write(MAGIC + bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")))
    schemaless_writer(buf, parsed, {**values, "added_in_a_later_version": "x"})
    return buf.getvalue()


def payload(topic: str, kind: str, rid: str) -> bytes:
    record = BY_NAME[topic].value
    assert record is not None
    values = sample(record, rid)
    if kind == "random":
        data = random.Random(rid).randbytes(512)
        return b"\x00" + data  # never the single-object magic
    good = encode(record, values)
    if kind == "truncated":
        return good[: HEADER_LEN + (len(good) - HEADER_LEN) // 2]
    if kind == "too_new":
        return too_new(record, values)
    raise ValueError(kind)
