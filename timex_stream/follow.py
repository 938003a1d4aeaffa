"""Follow requests from the result topics with a plain consumer (CLI, tests, scripts)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from schemas import DecodeError, decode_as
from schemas.topics import BY_NAME
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
            try:
                record = decode_as(BY_NAME[msg.topic()].value, msg.value())  # type: ignore[arg-type]
            except DecodeError:
                continue
            view = views[keys[msg.key()]]
            view.apply(msg.topic(), record)
            if on_update:
                on_update(view)
    finally:
        cons.close()
    return views
