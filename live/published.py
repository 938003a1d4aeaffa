"""What earlier runs of the live service wrote, read once when the service starts:
- the last revision of each live series, from `forecasts` (compacted: its latest per `request_id/series`);
- the source records already reported: too-late observations on `failures` (their `detail` names
  topic[partition]@offset) and undecodable records on `dead-letters` (the same, in its headers).

After a restart a follower re-reads its source topic from `start_from` and recomputes. Its revisions up to the
last one written are the same numbers with the same content (a revision depends only on the observations it
folds), so they are not written again: `forecasts` never goes back to an older revision and `forecast-history`
stays in revision order. A record reported before is counted on progress again but not reported twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from schemas import DecodeError, decode_as
from schemas.topics import DEAD_LETTERS, FAILURES, FORECASTS
from timex_stream.runtime.history import read_range

log = logging.getLogger("live")

LATE = "late"  # the failures' stage of a too-late observation (live/follower.py)


@dataclass
class Published:
    revisions: dict[str, int] = field(default_factory=dict)  # request_id/series → the highest revision
    late: set[tuple[str, str]] = field(default_factory=set)  # (request id, where) of reported late observations
    dead: set[str] = field(default_factory=set)  # where of dead-lettered source records

    def revisions_of(self, prefix: str) -> dict[str, int]:
        return {key[len(prefix):]: n for key, n in self.revisions.items() if key.startswith(prefix)}


def published(bootstrap: str) -> Published:
    """Up to the topics' end offsets now. On trouble reading them: a warning and what was read (at worst a
    recomputed revision is written again, the same content, or a record reported twice)."""
    out = Published()
    try:
        for msg in read_range(bootstrap, FORECASTS.name):
            if revision := _decoded(msg.value(), "ForecastRevision"):
                key = (msg.key() or b"").decode()
                out.revisions[key] = max(out.revisions.get(key, 0), revision["revision"])
        for msg in read_range(bootstrap, FAILURES.name):
            if (fail := _decoded(msg.value(), "Failure")) and fail["stage"] == LATE and fail["detail"]:
                out.late.add((fail["request_id"], fail["detail"]))
        for msg in read_range(bootstrap, DEAD_LETTERS.name):
            headers = {k: (v or b"").decode(errors="replace") for k, v in msg.headers() or []}
            if {"source.topic", "source.partition", "source.offset"} <= headers.keys():
                out.dead.add(f"{headers['source.topic']}[{headers['source.partition']}]@{headers['source.offset']}")
    except Exception as exc:  # a broker away at start: degrade to writing again, never to a stuck request
        log.warning("what earlier runs published could not be read: %s", exc)
    return out


def _decoded(value: bytes | None, name: str) -> dict | None:  # type: ignore[type-arg]
    if not value:
        return None
    try:
        return decode_as(name, value)  # type: ignore[arg-type,return-value]
    except DecodeError:
        return None
