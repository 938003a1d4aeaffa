"""Follow requests from the result topics with a plain consumer (CLI, tests, scripts), or take a snapshot of
what those topics say now without waiting."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from timex_stream.history import read_range
from timex_stream.kafka import consumer
from timex_stream.request_view import TOPICS, RequestView


def follow(bootstrap: str, request_ids: list[str], timeout: float = 300.0,
           on_update: Callable[[RequestView], None] | None = None,
           until: Callable[[dict[str, RequestView]], bool] | None = None) -> dict[str, RequestView]:
    """Read progress/best-models/failures from the beginning until every request is done (or `until`)."""
    views = {rid: RequestView(rid) for rid in request_ids}
    keys = {rid.encode(): rid for rid in request_ids}
    stop = until or (lambda v: all(x.done for x in v.values()))
    cons = consumer(bootstrap, f"timex-follow-{uuid.uuid4().hex[:8]}", **{"enable.auto.offset.store": False})
    cons.subscribe(list(TOPICS))
    deadline = time.monotonic() + timeout
    try:
        while not stop(views):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no final answer within {timeout:.0f} s: "
                                   + "; ".join(f"{r}: {v.status}" for r, v in views.items()))
            msg = cons.poll(0.2)
            if msg is None or msg.error() or msg.key() not in keys:
                continue
            view = views[keys[msg.key()]]
            if view.fold(msg.topic(), msg.value()) and on_update:
                on_update(view)
    finally:
        cons.close()
    return views


def snapshot(bootstrap: str, request_ids: list[str] | None = None,
             since_ms: int | None = None) -> dict[str, RequestView]:
    """The views of `request_ids` (None: of every request seen since `since_ms`) as the result topics hold
    them right now: reads each topic up to its current end and never waits for a request to finish."""
    wanted = set(request_ids) if request_ids is not None else None
    views: dict[str, RequestView] = {}
    for topic in TOPICS:
        for msg in read_range(bootstrap, topic, since_ms):
            rid = (msg.key() or b"").decode("utf-8", "replace")
            if not rid or (wanted is not None and rid not in wanted):
                continue
            views.setdefault(rid, RequestView(rid)).fold(topic, msg.value())
    if request_ids is None:
        return views
    return {rid: views.get(rid) or RequestView(rid) for rid in request_ids}
