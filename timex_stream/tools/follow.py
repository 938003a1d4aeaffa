"""Follow requests from the result topics with a plain consumer (CLI, tests, scripts), or take a snapshot of
what those topics say now without waiting. Both start where the requests began (the request index and
`offsets_for_times`, see `timex_stream.runtime.lookup`), never at the beginning of the topics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from schemas.keys import reselection_of
from timex_stream.runtime.history import read_range
from timex_stream.runtime.kafka import consumer
from timex_stream.runtime.lookup import read_views, seek_positions, start_times
from timex_stream.runtime.request_view import TOPICS, RequestView, request_of


def follow(bootstrap: str, request_ids: list[str], timeout: float = 300.0,
           on_update: Callable[[RequestView], None] | None = None,
           until: Callable[[dict[str, RequestView]], bool] | None = None,
           live: bool = False) -> dict[str, RequestView]:
    """Read progress/best-models/failures (and a live request's revisions) from where the requests began until
    every request is done (or `until`). A request not in the index yet (just submitted) is looked for in the
    last few minutes. `live`: follow a live request until it is stopped (or `until`), a one-off one until it
    is done and the topics are read up to their ends at the start (read back, a live request's first progress
    may come after its answer)."""
    views = {rid: RequestView(rid) for rid in request_ids}
    positions, ends = seek_positions(bootstrap, min(start_times(bootstrap, request_ids).values()))
    behind = {(tp.topic, tp.partition): ends[(tp.topic, tp.partition)] for tp in positions
              if tp.offset < ends[(tp.topic, tp.partition)]}

    def stop(v: dict[str, RequestView]) -> bool:
        if not live:
            return until(v) if until else all(x.done for x in v.values())
        return all(x.settled or (x.done and not x.standing and not behind) for x in v.values()) or bool(
            until and until(v))

    cons = consumer(bootstrap, f"timex-follow-{uuid.uuid4().hex[:8]}", **{"enable.auto.offset.store": False})
    cons.assign(positions)
    deadline = time.monotonic() + timeout
    try:
        while not stop(views):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no final answer within {timeout:.0f} s: "
                                   + "; ".join(f"{r}: {v.status}" for r, v in views.items()))
            msg = cons.poll(0.2)
            if msg is None or msg.error():
                continue
            where = (msg.topic(), msg.partition())
            if where in behind and msg.offset() + 1 >= behind[where]:
                del behind[where]
            if (rid := request_of(msg.topic(), msg.key())) not in views:
                continue
            view = views[rid]
            if view.fold(msg.topic(), msg.value(), msg.timestamp()[1]) and on_update:
                on_update(view)
    finally:
        cons.close()
    return views


def snapshot(bootstrap: str, request_ids: list[str] | None = None,
             since_ms: int | None = None) -> dict[str, RequestView]:
    """The views of `request_ids` (None: of every request seen since `since_ms`) as the result topics hold
    them right now: reads each topic up to its current end and never waits for a request to finish.
    Given ids are read from where they began (the index), not from `since_ms`."""
    if request_ids is not None:  # one read per request: two requests months apart read two short windows
        starts = start_times(bootstrap, request_ids)
        return {rid: read_views(bootstrap, {rid: starts[rid]})[rid] for rid in request_ids}
    views: dict[str, RequestView] = {}
    for topic in TOPICS:
        for msg in read_range(bootstrap, topic, since_ms):
            rid = request_of(topic, msg.key())
            if not rid or reselection_of(rid) is not None:  # a live series' re-selection is no request of its own
                continue
            views.setdefault(rid, RequestView(rid)).fold(topic, msg.value(), msg.timestamp()[1])
    return views
