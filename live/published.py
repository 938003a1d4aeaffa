"""What earlier runs of the live service published: the last revision of each live series, read from
`forecasts` (compacted: its latest per `request_id/series`) once when the service starts.

After a restart a follower re-reads its source topic from `start_from` and recomputes; its revisions below
the last one published are the same numbers with the same content (a revision depends only on the
observations it folds), so they are not written again: `forecasts` never goes back to an older revision and
`forecast-history` stays in revision order.
"""

from __future__ import annotations

import logging

from schemas import DecodeError, decode_as
from schemas.topics import FORECASTS
from timex_stream.runtime.history import read_range

log = logging.getLogger("live")


def last_revisions(bootstrap: str) -> dict[str, int]:
    """`request_id/series` → the highest revision on `forecasts` (up to its end offsets now). On trouble
    reading it: a warning and nothing known (recomputed revisions are then written again, same content)."""
    last: dict[str, int] = {}
    try:
        for msg in read_range(bootstrap, FORECASTS.name):
            if not msg.value():
                continue
            try:
                revision = decode_as("ForecastRevision", msg.value())["revision"]
            except DecodeError:
                continue
            key = (msg.key() or b"").decode()
            last[key] = max(last.get(key, 0), revision)
    except Exception as exc:  # a broker away at start: degrade to rewriting, never to a stuck request
        log.warning("the last published revisions could not be read from %s: %s", FORECASTS.name, exc)
    return last
