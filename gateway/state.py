"""Every request a gateway can answer, rebuilt from the topics by a background consumer thread.

Each gateway process reads ALL partitions of `configs`, `progress`, `best-models` and `failures` from the
beginning (its own group id, no commits), so a restarted gateway answers every earlier request and any
number of gateways answer any request id without routing. Readiness waits until the consumer has read
up to the end offsets present at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from gateway.plain import plain
from schemas import DecodeError, decode_as
from schemas.topics import BY_NAME, CONFIGS
from timex_stream.intake import position_of, read_request
from timex_stream.kafka import consumer
from timex_stream.request_view import TOPICS, RequestView

log = logging.getLogger(__name__)
WATCHED = (CONFIGS.name, *TOPICS)


@dataclass
class Submitted:
    """What `configs` says about a request: shown in the listing, and where to re-read it for a re-forecast."""

    request_id: str
    submitted_at: int
    origin: str
    replay_of: str | None
    title: str | None
    has_csv: bool
    owner: str | None = None  # the gateway user who submitted it; None when it came straight to Kafka
    partition: int | None = None  # None until the consumer has read the record back
    offset: int | None = None


Listener = tuple[asyncio.AbstractEventLoop, Callable[[str], None]]


class RequestStore:
    def __init__(self, bootstrap: str, kafka_users: tuple[str, ...] = ()) -> None:
        self.bootstrap = bootstrap
        # Users who also see requests with no owner (sent straight to Kafka): TIMEX_API_KAFKA_USERS.
        self.kafka_users = frozenset(kafka_users)
        self.caught_up = threading.Event()
        self.folded: dict[str, int] = dict.fromkeys(WATCHED, 0)  # records folded per topic (metrics)
        self.skipped: dict[str, int] = dict.fromkeys(WATCHED, 0)  # undecodable records skipped (metrics)
        self._lock = threading.Lock()
        self._views: dict[str, RequestView] = {}
        self._submitted: dict[str, Submitted] = {}
        self._listeners: dict[str, list[Listener]] = {}
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
        cons = consumer(self.bootstrap, f"timex-gateway-{uuid.uuid4().hex[:8]}")
        try:
            pending = self._assign_all(cons)
            while not self._stop.is_set():
                msg = cons.poll(0.2)
                if msg is not None and not msg.error():
                    self._fold(msg)
                    tp = (msg.topic(), msg.partition())
                    if tp in pending and msg.offset() + 1 >= pending[tp]:
                        del pending[tp]
                if not pending and not self.caught_up.is_set():
                    log.info("caught up: %d requests", len(self._views))
                    self.caught_up.set()
        except KafkaException as exc:  # the broker is gone for good: /health says so instead of hanging
            self.error = str(exc)
            log.exception("gateway consumer stopped")
        finally:
            cons.close()

    def _assign_all(self, cons: Consumer) -> dict[tuple[str, int], int]:
        """Assign every partition from the beginning; → the end offsets to reach before being ready."""
        meta = cons.list_topics(timeout=30).topics
        tps = [TopicPartition(t, p, OFFSET_BEGINNING) for t in WATCHED for p in sorted(meta[t].partitions)]
        cons.assign(tps)
        ends = {}
        for tp in tps:
            low, high = cons.get_watermark_offsets(tp, timeout=10)
            if high > low:
                ends[(tp.topic, tp.partition)] = high
        return ends

    def _fold(self, msg: Message) -> None:
        topic = msg.topic()
        try:
            if topic == CONFIGS.name:
                request = read_request(msg.key(), msg.value(), position_of(msg))
            else:
                request = decode_as(BY_NAME[topic].value, msg.value())  # type: ignore[arg-type]
        except DecodeError as exc:
            # The services park undecodable records on dead-letters (and tell a sender who gave a key).
            self._skip(msg, str(exc))
            return
        except Exception as exc:  # a reader bug on one record must not stop every other answer
            log.exception("reading %s failed", topic)
            self._skip(msg, f"{type(exc).__name__}: {exc}")
            return
        rid = request["request_id"]
        with self._lock:
            try:
                if topic == CONFIGS.name:
                    self._remember(request, msg.partition(), msg.offset(), msg.timestamp()[1])
                else:
                    self._views.setdefault(rid, RequestView(rid)).apply(topic, request)
            except Exception:  # a record no reader expected must not stop every other answer
                self.skipped[topic] += 1
                log.exception("skipped %s[%d]@%d", topic, msg.partition(), msg.offset())
                return
            self.folded[topic] += 1
            listeners = list(self._listeners.get(rid, ()))
        for loop, callback in listeners:
            loop.call_soon_threadsafe(callback, rid)

    def _skip(self, msg: Message, reason: str) -> None:
        with self._lock:
            self.skipped[msg.topic()] += 1
        log.warning("skipped %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), reason)

    def _remember(self, request: dict[str, Any], partition: int | None, offset: int | None,
                  timestamp_ms: int | None = None) -> None:
        try:
            doc = json.loads(request["config_json"])
            title = doc.get("activity_title") if isinstance(doc, dict) else None
        except (json.JSONDecodeError, RecursionError):
            title = None
        submitted_at = plain(request["submitted_at"])
        if request["origin"] == "kafka" and timestamp_ms:  # plain JSON: the broker's time, not ours
            submitted_at = timestamp_ms
        earlier = self._submitted.get(request["request_id"])
        # Once an id has an owner it keeps it: a later record reusing the id cannot hand it to someone else.
        owner = earlier.owner if earlier is not None and earlier.owner is not None else request.get("owner")
        self._submitted[request["request_id"]] = Submitted(
            request["request_id"], submitted_at, request["origin"], request.get("replay_of"),
            title if isinstance(title, str) else None, bool(request.get("csv_data")), owner, partition, offset)

    # --- called from the web handlers ------------------------------------------------------------------
    def note_submitted(self, request: dict[str, Any]) -> None:
        """A request this gateway just produced: known at once, before the consumer reads it back."""
        with self._lock:
            if request["request_id"] not in self._submitted:
                self._remember(request, None, None)

    def known(self, rid: str) -> bool:
        with self._lock:
            return rid in self._views or rid in self._submitted

    def visible(self, rid: str, user: str | None) -> bool:
        """Without auth (user None) every known request; with auth only the user's own. Requests with no
        owner (sent straight to Kafka, whose ACLs guard them) are only the `kafka_users`'; requests whose
        configs record is gone are nobody's."""
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

    def snapshot(self, rid: str) -> dict[str, Any] | None:
        """The request as JSON-ready data (a copy: safe to use while the consumer keeps folding)."""
        with self._lock:
            if rid not in self._views and rid not in self._submitted:
                return None
            return plain(self._describe(rid, full=True))

    def listing(self, limit: int, user: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if user is None:
                rids = self._views.keys() | self._submitted.keys()
            else:
                rids = {rid for rid, sub in self._submitted.items() if self._owns(user, sub)}
            rows = [self._describe(rid, full=False) for rid in rids]
        rows.sort(key=lambda r: r["submitted_at"] or r["first_at"] or 0, reverse=True)
        return plain(rows[:limit])

    def count(self) -> int:
        with self._lock:
            return len(self._views.keys() | self._submitted.keys())

    def _describe(self, rid: str, full: bool) -> dict[str, Any]:
        view = self._views.get(rid) or RequestView(rid)
        sub = self._submitted.get(rid)
        doc = view.to_dict()
        if not full:
            doc = {k: doc[k] for k in ("request_id", "title", "replay_of", "status", "done", "series", "units_done",
                                       "units_total", "first_at", "last_at")}
            doc["failures"] = len(view.failures)
        doc["title"] = doc["title"] or (sub.title if sub else None)
        doc["replay_of"] = doc["replay_of"] or (sub.replay_of if sub else None)
        doc.update(submitted_at=sub.submitted_at if sub else None, origin=sub.origin if sub else None,
                   has_csv=sub.has_csv if sub else False, owner=sub.owner if sub else None)
        return doc

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


def read_config_record(bootstrap: str, partition: int, offset: int, timeout: float = 15.0) -> dict[str, Any]:
    """Read one ForecastRequest back from `configs` (a re-forecast needs its config and uploaded CSV)."""
    cons = consumer(bootstrap, f"timex-gateway-fetch-{uuid.uuid4().hex[:8]}")
    try:
        cons.assign([TopicPartition(CONFIGS.name, partition, offset)])
        msgs = cons.consume(1, timeout)
        if not msgs or msgs[0].error() or msgs[0].offset() != offset:
            raise LookupError(f"configs[{partition}]@{offset} could not be read back")
        return read_request(msgs[0].key(), msgs[0].value(), position_of(msgs[0]))
    finally:
        cons.close()
