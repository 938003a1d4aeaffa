"""The request index (`requests` topic, compacted): one small record per request id saying who owns it, what
it is called and when and where it began, written before anything else of the request by the fan-out's
publish sequence (`timex_stream.runtime.fan_out`: the ingestion's, and a `replay --topic datasets`, whose request
has no configs record: position -1/-1, the time of the replay).

Readers (the gateway, `follow`, `results`, `compare`) learn there when a request began and seek the answer
topics to that time (`timex_stream.runtime.lookup`), instead of reading configs or the answers from the beginning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas import DecodeError, decode_as
from schemas.records import RequestIndexRecord
from schemas.topics import REQUESTS
from timex_stream.runtime.history import read_range
from timex_stream.runtime.records import as_ms, index_record  # noqa: F401 (built in records, read here)


def merged(earlier: Mapping[str, Any] | None, record: RequestIndexRecord) -> RequestIndexRecord:
    """A later record under the same id (a replayed topic, an id reused straight on Kafka) updates the
    entry, but once an id has an owner it keeps it: a reused id cannot hand a request to someone else."""
    if earlier is not None and earlier.get("owner") is not None:
        return {**record, "owner": earlier["owner"]}
    return record


def read_index(bootstrap: str, request_ids: set[str] | None = None) -> dict[str, RequestIndexRecord]:
    """The index entries of `request_ids` (None: all). The topic holds one small record per live request
    (no configs, no results), so this reads far less than any answer topic."""
    found: dict[str, RequestIndexRecord] = {}
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


def _plain_times(record: RequestIndexRecord) -> RequestIndexRecord:
    return {**record, "submitted_at": as_ms(record["submitted_at"]), "configs_at": as_ms(record["configs_at"])}
