"""The request index (`requests` topic, compacted): one small record per request id saying who owns it, what
it is called and when and where it began, written before anything else of the request by the fan-out's
publish sequence (`timex_stream.fan_out`: the ingestion's, and a `replay --topic datasets`, whose request
has no configs record: position -1/-1, the time of the replay).

Readers (the gateway, `follow`, `results`, `compare`) learn there when a request began and seek the answer
topics to that time (`timex_stream.lookup`), instead of reading configs or the answers from the beginning.
"""

from __future__ import annotations

import json
from typing import Any

from schemas import DecodeError, decode_as
from schemas.topics import REQUESTS
from timex_stream.history import read_range
from timex_stream.intake import Position


def index_record(request_id: str, where: Position, request: dict[str, Any] | None = None) -> dict[str, Any]:
    """The index record of the config at `where` (`request` as `intake.read_request` gave it; None for a
    record that is no config but named a request id, which gets an answer all the same)."""
    request = request or {}
    title = None
    try:
        doc = json.loads(request.get("config_json") or "{}")
        title = doc.get("activity_title") if isinstance(doc, dict) else None
    except (json.JSONDecodeError, RecursionError):
        pass
    submitted_at = as_ms(request.get("submitted_at")) or where.timestamp_ms
    origin = request.get("origin") or "kafka"
    if origin == "kafka" and where.timestamp_ms:  # plain JSON: the broker's time, not the sender's
        submitted_at = where.timestamp_ms
    return {"request_id": request_id, "owner": request.get("owner"),
            "title": title if isinstance(title, str) else None, "replay_of": request.get("replay_of"),
            "origin": origin, "has_csv": bool(request.get("csv_data")), "submitted_at": submitted_at,
            "configs_partition": where.partition, "configs_offset": where.offset, "configs_at": where.timestamp_ms}


def merged(earlier: dict[str, Any] | None, record: dict[str, Any]) -> dict[str, Any]:
    """A later record under the same id (a replayed topic, an id reused straight on Kafka) updates the
    entry, but once an id has an owner it keeps it: a reused id cannot hand a request to someone else."""
    if earlier is not None and earlier.get("owner") is not None:
        return {**record, "owner": earlier["owner"]}
    return record


def read_index(bootstrap: str, request_ids: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """The index entries of `request_ids` (None: all). The topic holds one small record per live request
    (no configs, no results), so this reads far less than any answer topic."""
    found: dict[str, dict[str, Any]] = {}
    for msg in read_range(bootstrap, REQUESTS.name):
        rid = (msg.key() or b"").decode("utf-8", "replace")
        if request_ids is not None and rid not in request_ids:
            continue
        try:
            record = decode_as("RequestIndex", msg.value())
        except DecodeError:
            continue
        found[rid] = merged(found.get(rid), _plain_times(record))
    return found


def _plain_times(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "submitted_at": as_ms(record["submitted_at"]), "configs_at": as_ms(record["configs_at"])}


def as_ms(value: Any) -> int | None:
    """Avro timestamp-millis come back as aware datetimes; records built here hold ints."""
    if value is None or isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)
