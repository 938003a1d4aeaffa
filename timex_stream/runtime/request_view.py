"""What a user sees of one request, folded from the `progress`, `best-models` and `failures` records, and for a
standing (live) request its revisions on `forecast-history`.

The gateway, the CLI and the tests all read requests this way. Folding is idempotent: a record seen
twice (at-least-once delivery, a replayed topic, a live request recomputed after a restart) changes nothing.
"""

from __future__ import annotations

import bisect
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from schemas import DecodeError, decode_as
from schemas.keys import split_series_key
from schemas.records import (
    BestModelRecord,
    FailureRecord,
    ForecastRevisionRecord,
    ProgressRecord,
    VisualizationParametersRecord,
)
from schemas.topics import BEST_MODELS, BY_NAME, FAILURES, FORECAST_HISTORY, PROGRESS
from timex_stream.runtime.records import for_users

log = logging.getLogger(__name__)

TOPICS = (PROGRESS.name, BEST_MODELS.name, FAILURES.name, FORECAST_HISTORY.name)
# A live series keeps its last revisions and actuals in memory (what `?at=`, the live page and `watch` show): at
# most REVISIONS_KEPT and ACTUALS_KEPT, and a request at most REQUEST_REVISIONS and REQUEST_ACTUALS over all its
# series (1,000 series: 5 revisions and 50 actuals each). A revision is ~1-2 kB at a 7-step horizon with its
# accuracy, so a live request holds at most ~10 MB in a gateway whatever its streams' length.
REVISIONS_KEPT = 200
ACTUALS_KEPT = 2_000
REQUEST_REVISIONS = 5_000
REQUEST_ACTUALS = 50_000


def request_of(topic: str, key: bytes | None) -> str:
    """The request id a record of an answer topic belongs to, from its key alone (no decoding): revisions are
    keyed request_id/series, the other answers by the request id."""
    text = (key or b"").decode("utf-8", "replace")
    return split_series_key(text)[0] if topic == FORECAST_HISTORY.name and "/" in text else text


@dataclass
class LiveSeriesView:
    """One live series as its revisions told it: its last revisions (each with `published_at`, the Kafka time
    it was written: what `?at=` looks up) and the last observations they folded in (bounds above)."""

    numbers: list[int] = field(default_factory=list)  # revision numbers, ascending
    revisions: dict[int, dict[str, Any]] = field(default_factory=dict)
    actuals: OrderedDict[str, float] = field(default_factory=OrderedDict)  # timestamp → value, oldest first

    def add(self, record: ForecastRevisionRecord, published_at: int | None, series_count: int = 1) -> bool:
        """Keep a revision (`series_count`: how many series its request has, which share the request's
        budget); False when it was seen (a recomputed revision is the same) or is older than what is kept."""
        keep = max(1, min(REVISIONS_KEPT, REQUEST_REVISIONS // max(1, series_count)))
        number = record["revision"]
        if number in self.revisions or (self.numbers and len(self.numbers) >= keep and number < self.numbers[0]):
            return False
        bisect.insort(self.numbers, number)
        self.revisions[number] = {**record, "published_at": published_at}
        while len(self.numbers) > keep:
            self.revisions.pop(self.numbers.pop(0))
        for stamp, value in zip(record.get("actual_timestamps") or [], record.get("actual_values") or [], strict=False):
            self.actuals[stamp] = value
        while len(self.actuals) > max(1, min(ACTUALS_KEPT, REQUEST_ACTUALS // max(1, series_count))):
            self.actuals.popitem(last=False)
        return True

    @property
    def latest(self) -> dict[str, Any]:
        return self.revisions[self.numbers[-1]]

    def at(self, at_ms: int) -> dict[str, Any] | None:
        """The revision current at `at_ms`: the last one written then; None if none is kept from before."""
        current = [self.revisions[n] for n in self.numbers if (self.revisions[n]["published_at"] or 0) <= at_ms]
        return current[-1] if current else None

    def since(self, number: int) -> list[dict[str, Any]]:
        return [self.revisions[n] for n in self.numbers[bisect.bisect_right(self.numbers, number):]]


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
    standing: bool = False  # a live request (its ingestion said so, or a revision came)
    stopped: bool = False  # a live request that was stopped (or failed for good)
    live: dict[str, LiveSeriesView] = field(default_factory=dict)  # series → its revisions
    revised_at: int | None = None  # when the last revision was written (Kafka time)
    # Each answer as users read it (`records.for_users`), made once per record: a followed request is snapshotted
    # at every change of it (the gateway's events), and a request of many series has as many answers to show.
    _shown: dict[str, tuple[BestModelRecord, dict[str, Any]]] = field(default_factory=dict, repr=False,
                                                                       compare=False)

    def shown(self, series: str) -> dict[str, Any]:
        """The answer for `series` as users read it (`records.for_users`; made again only for a newer answer)."""
        best = self.results[series]
        made = self._shown.get(series)
        if made is None or made[0] is not best:
            made = self._shown[series] = (best, for_users(best))
        return made[1]

    def fold(self, topic: str, value: bytes | None, published_at: int | None = None) -> bool:
        """Decode one record of `topic` and apply it; an unreadable one is counted and skipped, never raised
        (the services park such records on dead-letters; a reader only has to survive them). `published_at`:
        the record's Kafka time (a revision's: when it became current)."""
        try:
            self.apply(topic, decode_as(BY_NAME[topic].value, value), published_at)  # type: ignore[arg-type]
        except DecodeError as exc:
            self.skipped += 1
            log.warning("%s: a %s record skipped: %s", self.request_id, topic, exc)
            return False
        return True

    def apply(self, topic: str, record: Any, published_at: int | None = None) -> None:
        if topic == FORECAST_HISTORY.name:
            self._revision(record, published_at)
            return
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

    def _revision(self, record: ForecastRevisionRecord, published_at: int | None) -> None:
        self.standing = True
        series = self.live.setdefault(record["series"], LiveSeriesView())
        if series.add(record, published_at, len(self.live)) and published_at:
            self.revised_at = max(self.revised_at or 0, published_at)

    def _progress(self, p: ProgressRecord) -> None:
        self.title = p.get("title") or self.title
        self.replay_of = p.get("replay_of") or self.replay_of
        if p["stage"] == "standing":
            self.standing = True
        elif p["stage"] == "stopped":
            self.standing = self.stopped = True
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
    def settled(self) -> bool:
        """Nothing more will come: done, and for a live request stopped too (its revisions go on until then)."""
        return self.done and (not self.standing or self.stopped or self.fatal)

    @property
    def live_state(self) -> str | None:
        """None for a one-off request; waiting (no revision yet), live or stopped for a standing one."""
        if not self.standing:
            return None
        if self.stopped or self.fatal:
            return "stopped"
        return "live" if self.live else "waiting"

    def revisions(self, at_ms: int | None = None) -> dict[str, dict[str, Any]]:
        """Per series the latest revision, or with `at_ms` the one current then (series with none kept from
        before are left out)."""
        if at_ms is None:
            return {name: s.latest for name, s in self.live.items()}
        return {name: r for name, s in self.live.items() if (r := s.at(at_ms)) is not None}

    def live_summary(self) -> dict[str, Any] | None:
        """What the status and the listing show of a live request: its state, when it was last revised, per
        series the latest revision's number, last point and model."""
        if not self.standing:
            return None
        return {"state": self.live_state, "revised_at": self.revised_at,
                "series": {name: {k: s.latest[k] for k in ("revision", "last_timestamp", "model")}
                           for name, s in self.live.items()}}

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
                "progress": self.series_progress,
                "results": {name: self.shown(name) for name in self.results}, "failures": self.failures,
                "warnings": self.warnings, "first_at": self.first_at, "last_at": self.last_at,
                "skipped_records": self.skipped, "live": self.live_summary()}


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)  # fastavro gives timestamp-millis as aware datetimes
