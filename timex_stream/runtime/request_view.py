"""What a user sees of one request, folded from the `progress`, `best-models` and `failures` records.

The gateway, the CLI and the tests all read requests this way. Folding is idempotent: a record seen
twice (at-least-once delivery, a replayed topic) changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from schemas import DecodeError, decode_as
from schemas.records import BestModelRecord, FailureRecord, ProgressRecord, VisualizationParametersRecord
from schemas.topics import BEST_MODELS, BY_NAME, FAILURES, PROGRESS

log = logging.getLogger(__name__)

TOPICS = (PROGRESS.name, BEST_MODELS.name, FAILURES.name)


@dataclass
class RequestView:
    request_id: str
    title: str | None = None
    replay_of: str | None = None
    visualization: VisualizationParametersRecord | None = None  # the config's visualization_parameters
    accepted: bool = False
    series_names: list[str] | None = None  # known once the ingestion has prepared the data
    units_total: int = 0
    series_progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, BestModelRecord] = field(default_factory=dict)  # series → its answer
    failures: list[FailureRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    first_at: int | None = None
    last_at: int | None = None
    skipped: int = 0  # records under this request id that could not be read (poison, too-new schema)

    def fold(self, topic: str, value: bytes | None) -> bool:
        """Decode one record of `topic` and apply it; an unreadable one is counted and skipped, never raised
        (the services park such records on dead-letters; a reader only has to survive them)."""
        try:
            self.apply(topic, decode_as(BY_NAME[topic].value, value))  # type: ignore[arg-type]
        except DecodeError as exc:
            self.skipped += 1
            log.warning("%s: a %s record skipped: %s", self.request_id, topic, exc)
            return False
        return True

    def apply(self, topic: str, record: ProgressRecord | BestModelRecord | FailureRecord) -> None:
        at = _ms(record.get("at") or record.get("decided_at") or record.get("occurred_at"))
        if at is not None:
            self.first_at = at if self.first_at is None else min(self.first_at, at)
            self.last_at = at if self.last_at is None else max(self.last_at, at)
        if topic == PROGRESS.name:
            self._progress(record)
        elif topic == BEST_MODELS.name:
            self.results[record["series"]] = record
        elif topic == FAILURES.name:
            key = (record["stage"], record.get("series"), record.get("model"), record["message"])
            if all((f["stage"], f.get("series"), f.get("model"), f["message"]) != key for f in self.failures):
                self.failures.append(record)

    def _progress(self, p: ProgressRecord) -> None:
        self.title = p.get("title") or self.title
        self.replay_of = p.get("replay_of") or self.replay_of
        if p["stage"] == "accepted":
            self.accepted = True
            self.visualization = p.get("visualization") or self.visualization
            self.warnings = [w for w in p.get("message", "").split("; ") if w]
        elif p["stage"] == "ingested":
            self.accepted = True
            self.series_names = list(p["series_names"])
            self.units_total = p["units_total"]
        elif p.get("series"):
            old = self.series_progress.get(p["series"], {})
            if p["units_done"] >= old.get("units_done", -1):  # out-of-order delivery never goes backwards
                self.series_progress[p["series"]] = {"units_done": p["units_done"], "units_total": p["units_total"],
                                                     "current_best": p.get("current_best")}

    @property
    def fatal(self) -> bool:
        return any(f.get("fatal") for f in self.failures)

    @property
    def done(self) -> bool:
        if self.fatal:
            return True
        return self.series_names is not None and all(s in self.results for s in self.series_names)

    @property
    def units_done(self) -> int:
        done = {s: p["units_done"] for s, p in self.series_progress.items()}
        done.update({s: r["units_done"] for s, r in self.results.items()})
        return sum(done.values())

    @property
    def status(self) -> str:
        if self.fatal:
            return "failed"
        if self.done:
            return "done" if any(r.get("model") for r in self.results.values()) else "failed"
        if self.series_names is not None or self.series_progress:
            return "running"
        return "accepted" if self.accepted else "submitted"

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "title": self.title, "replay_of": self.replay_of,
                "visualization": self.visualization,
                "status": self.status, "done": self.done, "series": self.series_names,
                "units_done": self.units_done, "units_total": self.units_total,
                "progress": self.series_progress, "results": self.results, "failures": self.failures,
                "warnings": self.warnings, "first_at": self.first_at, "last_at": self.last_at,
                "skipped_records": self.skipped}


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)  # fastavro gives timestamp-millis as aware datetimes
