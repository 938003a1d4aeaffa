"""Server-sent events for one request: what changed between two snapshots, as `progress`, `result`,
`failure`, `revision` and `accuracy` (a live request's) and `done` events (the first snapshot sends everything
known so far; of a live request's revisions, the latest per series). A live request is done once it is
stopped."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from timex_stream.runtime.records import accuracy_record

PROGRESS_KEYS = ("status", "series", "units_done", "units_total", "progress", "warnings")


class EventDiff:
    def __init__(self) -> None:
        self._progress: dict[str, Any] | None = None
        self._results: dict[str, Any] = {}  # series → decided_at already sent
        self._failures = 0
        self.finished = False
        self.revisions_sent: dict[str, int] = {}  # series → the last revision sent (the store brings it up to date)

    def events(self, snapshot: dict[str, Any], revisions: Sequence[dict[str, Any]] = ()
               ) -> list[tuple[str, dict[str, Any]]]:
        """`revisions`: the live request's revisions not sent yet (RequestStore.new_revisions)."""
        out: list[tuple[str, dict[str, Any]]] = []
        progress = {"request_id": snapshot["request_id"], **{k: snapshot[k] for k in PROGRESS_KEYS}}
        if progress != self._progress:
            self._progress = progress
            out.append(("progress", progress))
        for series, best in sorted(snapshot["results"].items()):
            if self._results.get(series) != best["decided_at"]:
                self._results[series] = best["decided_at"]
                out.append(("result", best))
        for failure in snapshot["failures"][self._failures:]:
            out.append(("failure", failure))
        self._failures = len(snapshot["failures"])
        for revision in revisions:
            out.append(("revision", revision))
            if (accuracy := accuracy_record(revision)) is not None:  # the accuracy topic's record of it
                out.append(("accuracy", {**accuracy, "published_at": revision["published_at"]}))
        live = snapshot.get("live")
        if snapshot["done"] and not self.finished and (live is None or live["state"] == "stopped"):
            self.finished = True
            done = {"request_id": snapshot["request_id"], "status": snapshot["status"]}
            out.append(("done", {**done, "live": live["state"]} if live else done))
        return out


def encode_event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, allow_nan=False)}\n\n".encode()
