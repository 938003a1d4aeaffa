"""What a gateway knows of the requests: the request index in full (small), the answers of a bounded set.

A background consumer thread reads the request index (`requests`, compacted: one small record per request,
no configs, no results) from the beginning, and tails `progress`, `best-models`, `failures` and
`forecast-history` (live requests' revisions) from where they ended when the gateway started. The answers of
a request (its `RequestView`) are built on demand by seeking those topics to the time the request began
(`timex_stream.runtime.lookup`), kept fresh by the tail while cached, and evicted least recently used past
`max_requests` (TIMEX_GATEWAY_MAX_REQUESTS). So a restarted gateway answers every earlier request, any number
of gateways answer any request id without routing, and a gateway's memory holds the index plus `max_requests`
answers (of a live request: its last revisions per series, bounded in `request_view`), whatever the topics
hold. Readiness waits until the index has been read up to the end offsets present at start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from schemas import DecodeError, decode_as
from schemas.keys import reselection_of
from schemas.records import ForecastRequestRecord, RequestIndexRecord
from schemas.topics import BY_NAME, CONFIGS, FORECAST_HISTORY, REQUESTS
from schemas.wiring import GATEWAY
from timex_stream.runtime.intake import Position, position_of, read_request
from timex_stream.runtime.kafka import consumer, while_transient
from timex_stream.runtime.lookup import LOOKBACK_MS, read_views
from timex_stream.runtime.plain import plain
from timex_stream.runtime.request_index import as_ms, index_record, merged
from timex_stream.runtime.request_view import TOPICS, RequestView, request_of

log = logging.getLogger(__name__)
TAILED = (REQUESTS.name, *TOPICS)
WATCHED = (CONFIGS.name, *TAILED)  # every topic a gateway reads: configs only at a re-forecast's position


@dataclass
class Submitted:
    """A request's index entry: shown in the listing, who may see it, and where to re-read it for a
    re-forecast."""

    request_id: str
    submitted_at: int
    origin: str
    replay_of: str | None
    title: str | None
    has_csv: bool
    owner: str | None = None  # the gateway user who submitted it; None when it came straight to Kafka
    partition: int | None = None  # None until the ingestion has indexed it
    offset: int | None = None
    began_at: int | None = None  # the configs record's Kafka time: where its answers start

    @classmethod
    def of(cls, record: RequestIndexRecord, indexed: bool = True) -> Submitted:
        return cls(record["request_id"], record["submitted_at"], record["origin"], record.get("replay_of"),
                   record.get("title"), record["has_csv"], record.get("owner"),
                   record["configs_partition"] if indexed else None, record["configs_offset"] if indexed else None,
                   record["configs_at"] if indexed else None)

    def as_record(self) -> dict[str, Any]:
        return {"owner": self.owner}


Listener = tuple[asyncio.AbstractEventLoop, Callable[[str], None]]


class RequestStore:
    def __init__(self, bootstrap: str, kafka_users: tuple[str, ...] = (), max_requests: int = 500) -> None:
        self.bootstrap = bootstrap
        # Users who also see requests with no owner (sent straight to Kafka): TIMEX_API_KAFKA_USERS.
        self.kafka_users = frozenset(kafka_users)
        self.max_requests = max(1, max_requests)
        self.caught_up = threading.Event()
        self.folded: dict[str, int] = dict.fromkeys(TAILED, 0)  # records folded per topic (metrics)
        self.skipped: dict[str, int] = dict.fromkeys(TAILED, 0)  # undecodable records skipped (metrics)
        self.loads = 0  # requests whose answers were read back from the topics on demand (metrics)
        self.evictions = 0
        self._lock = threading.Lock()
        self._views: OrderedDict[str, RequestView] = OrderedDict()  # least recently used first
        self._loading: dict[str, threading.Event] = {}
        self._submitted: dict[str, Submitted] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._tail_from_ms = int(time.time() * 1000)  # answers after this are read by the tail
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-consumer", daemon=True)
        self.error: str | None = None

    # --- consumer thread -------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        cons = consumer(self.bootstrap, f"{GATEWAY.group}-{uuid.uuid4().hex[:8]}")
        try:
            pending, answers = self._assign(cons)
            while not self._stop.is_set():
                msg = cons.poll(0.2)
                if msg is not None and not msg.error():
                    self._fold(msg)
                    tp = (msg.topic(), msg.partition())
                    if tp in pending and msg.offset() + 1 >= pending[tp]:
                        del pending[tp]
                if not pending and not self.caught_up.is_set():
                    # The answers are tailed once the index is complete: a record of a request the index
                    # does not know is then a new request's, whose answers all come after the tail's start.
                    cons.resume(answers)
                    log.info("caught up: %d requests in the index", len(self._submitted))
                    self.caught_up.set()
        except KafkaException as exc:  # the broker is gone for good: /health says so instead of hanging
            self.error = str(exc)
            log.exception("gateway consumer stopped")
        finally:
            cons.close()

    def _assign(self, cons: Consumer) -> tuple[dict[tuple[str, int], int], list[TopicPartition]]:
        """The index from the beginning, the answer topics from their ends now (paused until the index is
        read); → the index's end offsets to reach before being ready, and the answer partitions."""
        meta = while_transient(lambda: cons.list_topics(timeout=30)).topics
        index = [TopicPartition(REQUESTS.name, p, OFFSET_BEGINNING) for p in sorted(meta[REQUESTS.name].partitions)]
        answers = []
        for topic in TOPICS:
            for p in sorted(meta[topic].partitions):
                tp = TopicPartition(topic, p)
                _, high = while_transient(lambda tp=tp: cons.get_watermark_offsets(tp, timeout=10))
                answers.append(TopicPartition(topic, p, high))
        self._tail_from_ms = int(time.time() * 1000)
        cons.assign(index + answers)
        cons.pause(answers)
        ends = {}
        for tp in index:
            low, high = while_transient(lambda tp=tp: cons.get_watermark_offsets(tp, timeout=10))
            if high > low:
                ends[(tp.topic, tp.partition)] = high
        return ends, answers

    def _fold(self, msg: Message) -> None:
        topic = msg.topic()
        if topic == FORECAST_HISTORY.name and not self._follows(request_of(topic, msg.key())):
            return  # a live stream nobody here looks at: not even decoded (its view is read back when asked)
        try:
            record = decode_as(BY_NAME[topic].value, msg.value())  # type: ignore[arg-type]
        except DecodeError as exc:
            # The services park undecodable records on dead-letters (and tell a sender who gave a key).
            self._skip(msg, str(exc))
            return
        rid = record["request_id"]
        if reselection_of(rid) is not None:  # a live series' re-selection: internal, its outcome is in the revisions
            return
        with self._lock:
            try:
                if topic == REQUESTS.name:
                    self._index(record)
                else:
                    view = self._views.get(rid) or self._fresh_view(rid)
                    if view is None:  # an older request nobody asked for: read on demand when asked
                        return
                    view.apply(topic, record, msg.timestamp()[1])
            except Exception:  # a record no reader expected must not stop every other answer
                self.skipped[topic] += 1
                log.exception("skipped %s[%d]@%d", topic, msg.partition(), msg.offset())
                return
            self.folded[topic] += 1
            listeners = list(self._listeners.get(rid, ()))
        for loop, callback in listeners:
            loop.call_soon_threadsafe(callback, rid)

    def _follows(self, rid: str) -> bool:
        """Whether the tail folds this request's records: its view is cached (a live request's progress records
        come before its first revision, so a new one has its view by then)."""
        with self._lock:
            return rid in self._views

    def _fresh_view(self, rid: str) -> RequestView | None:
        """A view the tail can build alone: a request that began surely after the tail's start (clocks may
        differ by LOOKBACK_MS), or that the complete index does not know yet (its index record, written
        before any of its answers, came after the tail's start). Any other is read back when asked."""
        sub = self._submitted.get(rid)
        if sub is not None and (sub.began_at is None or sub.began_at < self._tail_from_ms + LOOKBACK_MS):
            return None
        return self._cache(rid, RequestView(rid))

    def _skip(self, msg: Message, reason: str) -> None:
        with self._lock:
            self.skipped[msg.topic()] += 1
        log.warning("skipped %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), reason)

    def _index(self, record: RequestIndexRecord) -> None:
        record = {**record, "submitted_at": as_ms(record["submitted_at"]), "configs_at": as_ms(record["configs_at"])}
        earlier = self._submitted.get(record["request_id"])
        self._submitted[record["request_id"]] = Submitted.of(merged(earlier and earlier.as_record(), record))

    def _cache(self, rid: str, view: RequestView) -> RequestView:
        self._views[rid] = view
        self._views.move_to_end(rid)
        while len(self._views) > self.max_requests:
            self._views.popitem(last=False)
            self.evictions += 1
        return view

    # --- called from the web handlers ------------------------------------------------------------------
    def note_submitted(self, request: ForecastRequestRecord) -> None:
        """A request this gateway just produced: known at once, before the ingestion indexes it; all its
        answers are still to come, so the tail alone builds its view."""
        rid = request["request_id"]
        record = index_record(rid, Position(-1, -1, 0), request)
        with self._lock:
            if rid in self._submitted:  # indexed already: the tail may have passed answers by, read them back
                return
            self._submitted[rid] = Submitted.of(record, indexed=False)
            if rid not in self._views:  # (the tail may have begun it: nothing indexed it, so it is new)
                self._cache(rid, RequestView(rid))

    def known(self, rid: str) -> bool:
        with self._lock:
            return rid in self._views or rid in self._submitted

    def visible(self, rid: str, user: str | None) -> bool:
        """Without auth (user None) every known request; with auth only the user's own. Requests with no
        owner (sent straight to Kafka, whose ACLs guard them) are only the `kafka_users`'; requests whose
        index entry is gone are nobody's."""
        if user is None:
            return self.known(rid)
        with self._lock:
            sub = self._submitted.get(rid)
            return sub is not None and self._owns(user, sub)

    def _owns(self, user: str, sub: Submitted) -> bool:
        return sub.owner == user or (sub.owner is None and user in self.kafka_users)

    def submitted(self, rid: str) -> Submitted | None:
        with self._lock:
            return self._submitted.get(rid)

    def views(self, rids: Iterable[str]) -> dict[str, RequestView]:
        """The views of `rids`, read back from the topics for those not in memory (one read from the
        earliest of their starts; blocking: call it off the event loop)."""
        wanted = list(dict.fromkeys(rids))
        while True:
            with self._lock:
                busy = [self._loading[r] for r in wanted if r in self._loading]
                if not busy:
                    found = {r: self._views[r] for r in wanted if r in self._views}
                    for rid in found:
                        self._views.move_to_end(rid)
                    starts = {r: self._start_of(r) for r in wanted if r not in found}
                    done = threading.Event()
                    for rid in starts:  # cached before reading: the tail folds new records in meanwhile
                        found[rid] = self._cache(rid, RequestView(rid))
                        self._loading[rid] = done
                    break
            busy[0].wait(60)
        if not starts:
            return found
        try:
            read_views(self.bootstrap, starts, into=found, lock=self._lock, group=f"{GATEWAY.group}-lookup")
            self.loads += len(starts)
        except BaseException:  # an empty view left cached would look like a request with no answers
            with self._lock:
                for rid in starts:
                    self._views.pop(rid, None)
            raise
        finally:
            with self._lock:
                for rid in starts:
                    self._loading.pop(rid, None)
            done.set()
        return found

    def _start_of(self, rid: str) -> int:
        sub = self._submitted.get(rid)
        if sub is not None and sub.began_at is not None:
            return sub.began_at
        return sub.submitted_at if sub is not None else self._tail_from_ms

    def snapshot(self, rid: str) -> dict[str, Any] | None:
        """The request as JSON-ready data (a copy: safe to use while the consumer keeps folding);
        blocking when its answers have to be read back."""
        if not self.known(rid):
            return None
        view = self.views([rid])[rid]
        with self._lock:
            return plain(self._describe(rid, view, full=True))

    def listing(self, limit: int, user: str | None = None) -> list[dict[str, Any]]:
        """The `limit` newest requests `user` may see, newest first (blocking, like `snapshot`)."""
        with self._lock:
            if user is None:
                rids = self._views.keys() | self._submitted.keys()
            else:
                rids = {rid for rid, sub in self._submitted.items() if self._owns(user, sub)}
            newest = sorted(rids, key=self._order, reverse=True)[:limit]
        views = self.views(newest)
        with self._lock:
            rows = [self._describe(rid, views[rid], full=False) for rid in newest]
        rows.sort(key=lambda r: r["submitted_at"] or r["first_at"] or 0, reverse=True)
        return plain(rows)

    def _order(self, rid: str) -> int:
        sub = self._submitted.get(rid)
        if sub is not None:
            return sub.submitted_at or 0
        view = self._views.get(rid)
        return (view.first_at or 0) if view is not None else 0

    def count(self) -> int:
        with self._lock:
            return len(self._views.keys() | self._submitted.keys())

    def cached(self) -> int:
        with self._lock:
            return len(self._views)

    def _describe(self, rid: str, view: RequestView, full: bool) -> dict[str, Any]:
        sub = self._submitted.get(rid)
        doc = view.to_dict()
        if not full:
            doc = {k: doc[k] for k in ("request_id", "title", "replay_of", "status", "done", "series", "units_done",
                                       "units_total", "first_at", "last_at")}
            # a live request: its state and last revision time, not each series'
            doc["live"] = {"state": view.live_state, "revised_at": view.revised_at} if view.standing else None
            doc["failures"] = len(view.failures)
        doc["title"] = doc["title"] or (sub.title if sub else None)
        doc["replay_of"] = doc["replay_of"] or (sub.replay_of if sub else None)
        doc.update(submitted_at=sub.submitted_at if sub else None, origin=sub.origin if sub else None,
                   has_csv=sub.has_csv if sub else False, owner=sub.owner if sub else None)
        return doc

    def revisions(self, rid: str, at_ms: int | None = None, since: int | None = None) -> dict[str, Any]:
        """A live request's forecasts: per series its latest revision (with `at_ms`, the one current then), and
        with `since` every kept revision numbered above it (blocking when its answers have to be read back)."""
        view = self.views([rid])[rid]
        with self._lock:
            doc: dict[str, Any] = {"request_id": rid, "live": view.live_state, "at": at_ms,
                                   "series": view.revisions(at_ms)}
            if since is not None:
                doc["revisions"] = {name: s.since(since) for name, s in view.live.items()}
            return plain(doc)

    def new_revisions(self, rid: str, sent: dict[str, int]) -> list[dict[str, Any]]:
        """The revisions of a (loaded) request after those `sent` (series → revision number; a series not in it:
        only its latest), oldest first; `sent` is brought up to date."""
        with self._lock:
            view = self._views.get(rid)
            if view is None:
                return []
            out = [r for name, s in view.live.items() for r in s.since(sent.get(name, s.numbers[-1] - 1))]
            for r in out:
                sent[r["series"]] = max(sent.get(r["series"], -1), r["revision"])
            return plain(sorted(out, key=lambda r: (r["published_at"] or 0, r["series"], r["revision"])))

    def subscribe(self, rid: str, loop: asyncio.AbstractEventLoop,
                  callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(rid)` on `loop` whenever the request changes; → a function that unsubscribes."""
        entry = (loop, callback)
        with self._lock:
            self._listeners.setdefault(rid, []).append(entry)

        def unsubscribe() -> None:
            with self._lock:
                listeners = self._listeners.get(rid, [])
                if entry in listeners:
                    listeners.remove(entry)
                if not listeners:
                    self._listeners.pop(rid, None)

        return unsubscribe


def read_config_record(bootstrap: str, partition: int, offset: int, timeout: float = 15.0) -> ForecastRequestRecord:
    """Read one ForecastRequest back from `configs` (a re-forecast needs its config and uploaded CSV)."""
    cons = consumer(bootstrap, f"{GATEWAY.group}-fetch-{uuid.uuid4().hex[:8]}")
    try:
        cons.assign([TopicPartition(CONFIGS.name, partition, offset)])
        msgs = cons.consume(1, timeout)
        if not msgs or msgs[0].error() or msgs[0].offset() != offset:
            raise LookupError(f"configs[{partition}]@{offset} could not be read back")
        return read_request(msgs[0].key(), msgs[0].value(), position_of(msgs[0]))
    finally:
        cons.close()
