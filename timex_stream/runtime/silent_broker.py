"""A broker that stops answering without closing its connections (a network partition, a paused process) must
cost seconds, not the whole outage.

aiokafka 0.14 has one `request_timeout_ms` per client, used for three things: how long a request waits for its
answer on a connection (connect and version lookup included), how long a produce batch may live before it
fails, and how long `send` waits for a full buffer. Faust sets the producer's to 20 minutes, so that a long
refusal (two brokers of three down: NOT_ENOUGH_REPLICAS) makes the services wait instead of failing sends. But
then a produce request sent to a broker that went silent waits up to 20 minutes for its answer: its partitions
get new leaders within seconds, yet the batches stay on the silent connection, and every checkpoint (which
flushes the producer) waits with them. Measured on the 3-broker cluster: one broker paused 30 s stopped the
answers for the whole 30 s (tests/faults/test_cluster_faults.py).

Here the connections' answer timeout is decoupled from the rest (what Kafka's Java client calls
`request.timeout.ms` against `delivery.timeout.ms`; aiokafka has no such option yet:
https://github.com/aio-libs/aiokafka/issues/632):
- A request unanswered for ANSWER_S fails; aiokafka closes the connection, which fails every request still on
  it with a retriable error, refreshes its metadata and sends the batches again, to the new leader once the
  controller has fenced the silent broker. The producers are idempotent (`acks=all`), so a batch sent again is
  written once, and they retry without expiry: nothing is dropped however long a refusal lasts (the batches'
  lifetime, still Faust's 20 minutes, is untouched). The consumers get the same bound (metadata, offsets,
  heartbeats: a group whose coordinator went silent finds the new one), but for the requests that wait by
  design: a fetch waits up to Faust's 1.5 s for records, a JoinGroup or SyncGroup for the whole rebalance, a
  CreateTopics for the topic's creation (`waits`: those keep their own bound).
- But a produce and an offset commit are held by a *healthy* broker until every in-sync replica has them (and a
  heartbeat, which Kafka 4's group coordinator answers once its earlier writes are replicated: measured 4.4 s), and
  while a follower is silent that lasts until the controller fences it (the broker session, 4 s then, and a
  controller election first when the silent broker was the active controller: 7 s). Given up after ANSWER_S, the
  healthy leaders were taken for silent ones and left alone SILENT_S, and writes came back 9 s after a pause
  whose fencing took 7 (measured, the paused broker of tests/faults/test_cluster_faults.py: answers stopped up
  to 11 s). Those requests, and any request queued behind one on its connection (a broker answers a
  connection's requests in order), wait up to HELD_S instead; from HELD_CHECK_S on (ANSWER_S for the others) the
  client's metadata is asked every WATCH_S, and a request whose broker is no longer listed (KRaft lists the
  unfenced brokers only: it was fenced) has its connection closed: its requests go to the new leaders within
  WATCH_S of the fencing, whatever their bound.
- A broker that let a request or a connect time out, or was fenced, is not asked again for SILENT_S by any client
  of the process: its listener still accepts connections, which then answer nothing, so each try cost ANSWER_S,
  and a group member that tried it twice for its coordinator missed its session and set off a rebalance. Such a
  refusal asks for metadata (at most every WATCH_S), so the caller learns where the partitions went.
- Metadata goes on a connection of its own to each broker (on the shared one it queued behind a 1.5 s fetch or a
  held produce), and not to a broker that answered none of the process's requests for QUIET_S (a silent one
  cost ANSWER_S a try), unless none answered. A client asks for metadata only the brokers its last metadata
  listed; when none of them answers (metadata taken while two brokers were down lists only the third, which then
  went silent), it asks the bootstrap servers, as Kafka's Java client does since KIP-899
  (`metadata.recovery.strategy=rebootstrap`).

This sets private attributes of aiokafka (`AIOKafkaClient._request_timeout_ms`, `_get_conn` and its connection
groups, `_metadata_update`, a connection's `send`, `close` and `_request_timeout`), so it holds for the aiokafka it
was written against only: `check_aiokafka_version` refuses any other (TimexApp calls it at start). `_request_timeout_ms`
also bounds how long aiokafka waits for the metadata of a topic it has never seen (a first send to a topic
created after the service started): ANSWER_S now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from aiokafka.conn import CloseReason
from aiokafka.errors import KafkaConnectionError, KafkaError

from timex_stream.runtime.pinned import require_version

WRITTEN_FOR = "0.14.0"  # the aiokafka whose private attributes this sets
ANSWER_S = 3.0  # a request unanswered this long: the connection is given up (its requests are sent again)
SILENT_S = 5.0  # a broker that let a request or a connect time out is not asked again for this long
FETCH_WAIT_S = 1.5  # how long a fetch waits for records at the broker (Faust's aiokafka consumer: 1500 ms)
# A produce (acks=all), an offset commit or a heartbeat (Kafka 4's group coordinator answers one once its earlier
# writes to the offsets topic are replicated): a healthy broker holds it until the controller fenced a silent follower
# (the broker session, 3 s on the local cluster, 9 s on Strimzi, counted again from a new controller's start when
# the silent broker was the active controller: about 3 s more). Longer than that anywhere (Java's
# request.timeout.ms); a silent broker's connection is given up sooner, at its fencing (`_Guard.watch`).
HELD_S = 30.0
# A broker that answered none of the process's requests this long while asked (a fetch is answered within its
# FETCH_WAIT_S): metadata is asked of another.
QUIET_S = FETCH_WAIT_S + 1.0
HELD_CHECK_S = 1.0  # a held request unanswered this long: its broker's fencing is watched for (`_Guard.watch`)
WATCH_S = 0.5  # a late request: the metadata asked this often until it is answered or its broker is fenced
# Kafka API keys (https://kafka.apache.org/protocol#protocol_api_keys) of the requests that wait by design.
PRODUCE, FETCH, OFFSET_COMMIT, JOIN_GROUP, HEARTBEAT, SYNC_GROUP, CREATE_TOPICS = 0, 1, 8, 11, 12, 14, 19
log = logging.getLogger(__name__)


def check_aiokafka_version(installed: str | None = None) -> None:
    """Raise unless the installed aiokafka is the one this module was written for."""
    installed = installed or version("aiokafka")
    require_version("aiokafka", installed, WRITTEN_FOR, "silent_broker.py",
                    f"check whether aiokafka issue #632 (a delivery timeout apart from the request timeout) is solved "
                    f"in {installed} and whether AIOKafkaClient._request_timeout_ms, _get_conn (its group keys), "
                    f"_metadata_update, force_metadata_update, bootstrap, cluster.broker_metadata and "
                    f"AIOKafkaConnection.send, close, _request_timeout still mean the same, run "
                    f"tests/faults/test_cluster_faults.py (the paused broker), then update WRITTEN_FOR (or use the "
                    f"new option)")


PRODUCER_WAITS: dict[int, float | None] = {PRODUCE: HELD_S, CREATE_TOPICS: None}
CONSUMER_WAITS: dict[int, float | None] = {FETCH: FETCH_WAIT_S + ANSWER_S, OFFSET_COMMIT: HELD_S, HEARTBEAT: HELD_S,
                                           JOIN_GROUP: None, SYNC_GROUP: None}


# While a client asks for metadata: the brokers not to ask (`_metadata_update`).
ASKING_METADATA: ContextVar[frozenset | None] = ContextVar("asking_metadata", default=None)
# aiokafka keys its connections by (node, ConnectionGroup): DEFAULT 0, COORDINATION 1. A third value gives metadata
# requests a connection of their own to each broker: on the default one a metadata request waits behind a fetch
# (up to 1.5 s) or a held produce (until a fencing), so a partition's new leader was learnt seconds late.
METADATA_GROUP = 2
# Brokers gone silent, for every client of the process (by address): the consumer that found a broker silent
# keeps the producer from sending it new batches that would wait there.
_silent_until: dict[tuple[str, int] | Any, float] = {}


@dataclass
class _Heard:
    """What the process's clients last heard from a broker: a silent one answers none of them, a healthy one holding
    a produce still answers their fetches (every FETCH_WAIT_S at most) and metadata requests."""
    waiting: int = 0  # requests sent to it not answered yet
    at: float = 0.0  # when it last answered (or when a request was sent while none was waiting)

    def quiet(self) -> bool:
        return self.waiting > 0 and time.monotonic() - self.at > QUIET_S


_heard: dict[tuple[str, int] | Any, _Heard] = defaultdict(_Heard)


class _Guard:
    """One client's bounds: per request, per broker gone silent, and for its metadata."""

    def __init__(self, client: Any, seconds: float, waits: Mapping[int, float | None]) -> None:
        own = client._request_timeout_ms / 1000
        self.client, self.seconds = client, seconds
        self.bounds = {api: own if bound is None else bound for api, bound in waits.items()}
        self.held = {api for api, bound in waits.items() if bound == HELD_S}  # what a healthy broker may hold
        self.asked_at = 0.0  # when `refresh` last asked for metadata
        self.rebootstrapping = False
        self.get_conn, self.metadata_update = client._get_conn, client._metadata_update

    def address(self, node_id: Any) -> tuple[str, int] | Any:
        broker = self.client.cluster.broker_metadata(node_id)
        return node_id if broker is None else (broker.host, broker.port)

    def went_silent(self, where: tuple[str, int] | Any) -> None:
        """`where`: the broker's address (`address`), taken while the metadata listed it."""
        # Not on a single broker: nobody else to ask, and a loaded broker that answered late answers again.
        if len(self.client.cluster.brokers()) > 1:
            _silent_until[where] = time.monotonic() + SILENT_S

    def silent(self, node_id: Any) -> bool:
        return time.monotonic() < _silent_until.get(self.address(node_id), 0.0)

    def refresh(self) -> Awaitable[Any]:
        """Ask for metadata now, not at the next periodic refresh (5 s apart): a partition's new leader, a fenced
        broker, learnt within WATCH_S. Asks made together share one request."""
        self.asked_at = time.monotonic()
        return self.client.force_metadata_update()

    async def watch(self, node_id: Any, conn: Any, answer: Awaitable[Any], api: int) -> Any:
        """The answer. Once it is late (HELD_CHECK_S for a held request, else ANSWER_S) the metadata is asked every
        WATCH_S: a broker that the controller fenced (a silent one: KRaft's metadata lists the unfenced brokers only)
        gets its connection closed, which fails its requests with a retriable error, so they go to the new leaders
        at once, not after their bound. A request that timed out leaves its broker alone for SILENT_S."""
        waiting = asyncio.ensure_future(answer)
        where = self.address(node_id)
        heard = _heard[where]
        if not heard.waiting:
            heard.at = time.monotonic()
        heard.waiting += 1
        try:
            done, _ = await asyncio.wait({waiting}, timeout=min(HELD_CHECK_S if api in self.held else ANSWER_S,
                                                                self.seconds))
            while not done:
                await asyncio.wait({waiting, asyncio.ensure_future(self.refresh())}, timeout=ANSWER_S,
                                   return_when=asyncio.FIRST_COMPLETED)
                if not waiting.done() and self.client.cluster.broker_metadata(node_id) is None:
                    log.warning("broker %s is fenced: its connection is given up, its requests sent again", node_id)
                    self.went_silent(where)
                    conn.close(reason=CloseReason.CONNECTION_BROKEN,
                               exc=KafkaConnectionError(f"broker {node_id} fenced while a request waited on it"))
                done, _ = await asyncio.wait({waiting}, timeout=WATCH_S)
            answered = waiting.result()
            heard.at = time.monotonic()
            return answered
        except TimeoutError:
            self.went_silent(where)
            raise
        finally:
            waiting.cancel()  # a no-op once done; else the caller was cancelled, and so is the wait
            conn._timex_held -= api in self.held
            heard.waiting -= 1

    async def _get_conn(self, node_id: Any, **kwargs: Any) -> Any:
        if self.silent(node_id):
            if time.monotonic() - self.asked_at >= WATCH_S:  # where its partitions went, for the caller's next try
                self.refresh()
            return None  # as if it refused: the caller asks another broker, or retries after its backoff
        if (avoid := ASKING_METADATA.get()) is not None and node_id != "bootstrap":
            if node_id in avoid:
                return None
            kwargs["group"] = METADATA_GROUP
        started = time.monotonic()
        conn = await self.get_conn(node_id, **kwargs)
        if conn is None:
            if time.monotonic() - started >= self.seconds:  # the connect timed out, not refused
                self.went_silent(self.address(node_id))
        elif not getattr(conn, "_timex_guarded", False):
            conn._timex_guarded = True
            conn._timex_held = 0  # requests in flight on it that a healthy broker may hold (HELD_S)
            send = conn.send

            def send_with_its_bound(request: Any, expect_response: bool = True) -> Any:
                # `send` reads `_request_timeout` before it returns its awaitable: set for this request only. A broker
                # answers a connection's requests in order: one behind a held request waits as long.
                api = request.API_KEY
                bound = self.bounds.get(api, self.seconds)
                conn._request_timeout = max(bound, HELD_S) if conn._timex_held else bound
                answer = send(request, expect_response)
                conn._timex_held += api in self.held
                return self.watch(node_id, conn, answer, api)

            conn.send = send_with_its_bound
        return conn

    async def _metadata_update(self, cluster_metadata: Any, topics: Any) -> bool:
        # Not a broker that answered nothing for QUIET_S while asked (one asked costs ANSWER_S if it is silent),
        # unless none did.
        listed = [b.nodeId for b in self.client.cluster.brokers()]
        quiet = frozenset(n for n in listed if _heard[self.address(n)].quiet())
        asking = ASKING_METADATA.set(quiet if len(quiet) < len(listed) else frozenset())
        try:
            updated = await self.metadata_update(cluster_metadata, topics)
        finally:
            ASKING_METADATA.reset(asking)
        if updated:
            self.rebootstrapping = False
            return True
        if cluster_metadata is not self.client.cluster:  # a one-off copy (fetch_all_metadata): as before
            return False
        if not self.rebootstrapping:
            log.warning("no broker of the last metadata answered; asking the bootstrap servers")
            self.rebootstrapping = True
        try:
            await self.client.bootstrap()  # metadata from the first bootstrap server that answers, into .cluster
        except KafkaError:
            return False
        return True


def answer_within(client: Any, seconds: float, waits: Mapping[int, float | None]) -> None:
    """Make `client` (an AIOKafkaClient, before it connects) give up a connection on which a request went
    unanswered for `seconds` (its connect included), or for `waits[api_key]` for the requests of that API (None:
    the client's own timeout, as before); ask a broker that let one time out nothing for SILENT_S; ask the
    bootstrap servers for metadata when none of the known brokers answers."""
    guard = _Guard(client, seconds, waits)
    client._request_timeout_ms = int(seconds * 1000)  # every new connection's timeout, its connect included
    client._get_conn = guard._get_conn
    client._metadata_update = guard._metadata_update


def bound_producer(client: Any) -> None:
    answer_within(client, ANSWER_S, PRODUCER_WAITS)


def bound_consumer(client: Any) -> None:
    answer_within(client, ANSWER_S, CONSUMER_WAITS)
