"""What arrives on `configs`: an Avro ForecastRequest, or a plain UTF-8 JSON TIMEX config typed into any
Kafka producer (told apart by the single-object magic bytes 0xC3 0x01)."""

from __future__ import annotations

import json
from typing import Any

from schemas.codec import MAGIC, DecodeError, decode_as
from timex_stream.records import now_ms
from timex_stream.submit import new_request_id


class NotAConfigError(DecodeError):
    """Neither Avro nor a JSON object: a poison message for the dead-letter topic."""


def read_request(key: bytes | None, value: bytes | None) -> dict[str, Any]:
    """→ a ForecastRequest record. Plain JSON gets the Kafka key as request id, or a new one."""
    if value and value[:2] == MAGIC:
        return decode_as("ForecastRequest", value)
    try:
        doc = json.loads(value or b"")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAConfigError(f"configs record is neither Avro nor JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise NotAConfigError(f"configs record is JSON but not an object (got {type(doc).__name__})")
    request_id = key.decode("utf-8", "replace").strip() if key else ""
    return {"request_id": request_id or new_request_id(), "submitted_at": now_ms(), "origin": "kafka",
            "config_json": json.dumps(doc), "csv_data": None, "replay_of": None, "owner": None}
