"""Server-sent events for one request: what changed between two snapshots, as `progress`, `result`,
`failure` and `done` events (the first snapshot sends everything known so far)."""

from __future__ import annotations

import json
from typing import Any

PROGRESS_KEYS = ("status", "series", "units_done", "units_total", "progress", "warnings")


class EventDiff:
    def __init__(self) -> None:
        self._progress: dict[str, Any] | None = None
        self._results: dict[str, Any] = {}  # series → decided_at already sent
        self._failures = 0
        self.finished = False

    def events(self, snapshot: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
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
        if snapshot["done"] and not self.finished:
            self.finished = True
            out.append(("done", {"request_id": snapshot["request_id"], "status": snapshot["status"]}))
        return out


def encode_event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, allow_nan=False)}\n\n".encode()
