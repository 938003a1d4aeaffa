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
  commits, heartbeats: a group whose coordinator went silent finds the new one), but for the requests that wait
  by design: a fetch waits up to Faust's 1.5 s for records, a JoinGroup or SyncGroup for the whole rebalance, a
  CreateTopics for the topic's creation (`waits`: those keep their own bound).
- A broker that let a request or a connect time out is not asked again for SILENT_S: its listener still accepts
  connections, which then answer nothing, so each try cost ANSWER_S, and a group member that tried it twice for
  its coordinator missed its session and set off a rebalance.
- A client asks for metadata only the brokers its last metadata listed; when none of them answers (metadata
  taken while two brokers were down lists only the third, which then went silent), it asks the bootstrap servers,
  as Kafka's Java client does since KIP-899 (`metadata.recovery.strategy=rebootstrap`).

This sets private attributes of aiokafka (`AIOKafkaClient._request_timeout_ms`, `_get_conn` and
`_metadata_update`, a connection's `send` and `_request_timeout`), so it holds for the aiokafka it was written
against only: `check_aiokafka_version` refuses any other (TimexApp calls it at start). `_request_timeout_ms`
also bounds how long aiokafka waits for the metadata of a topic it has never seen (a first send to a topic
created after the service started): ANSWER_S now.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Mapping
from importlib.metadata import version
from typing import Any

from aiokafka.errors import KafkaError

from timex_stream.runtime.pinned import require_version

WRITTEN_FOR = "0.14.0"  # the aiokafka whose private attributes this sets
ANSWER_S = 3.0  # a request unanswered this long: the connection is given up (its requests are sent again)
SILENT_S = 5.0  # a broker that let a request or a connect time out is not asked again for this long
FETCH_WAIT_S = 1.5  # how long a fetch waits for records at the broker (Faust's aiokafka consumer: 1500 ms)
# Kafka API keys (https://kafka.apache.org/protocol#protocol_api_keys) of the requests that wait by design.
FETCH, JOIN_GROUP, SYNC_GROUP, CREATE_TOPICS = 1, 11, 14, 19
log = logging.getLogger(__name__)


def check_aiokafka_version(installed: str | None = None) -> None:
    """Raise unless the installed aiokafka is the one this module was written for."""
    installed = installed or version("aiokafka")
    require_version("aiokafka", installed, WRITTEN_FOR, "silent_broker.py",
                    f"check whether aiokafka issue #632 (a delivery timeout apart from the request timeout) is solved "
                    f"in {installed} and whether AIOKafkaClient._request_timeout_ms, _get_conn, _metadata_update, "
                    f"bootstrap and AIOKafkaConnection.send, _request_timeout still mean the same, run "
                    f"tests/faults/test_cluster_faults.py (the paused broker), then update WRITTEN_FOR (or use the "
                    f"new option)")


PRODUCER_WAITS: dict[int, float | None] = {CREATE_TOPICS: None}
CONSUMER_WAITS: dict[int, float | None] = {FETCH: FETCH_WAIT_S + ANSWER_S, JOIN_GROUP: None, SYNC_GROUP: None}


class _Guard:
    """One client's bounds: per request, per broker gone silent, and for its metadata."""

    def __init__(self, client: Any, seconds: float, waits: Mapping[int, float | None]) -> None:
        own = client._request_timeout_ms / 1000
        self.client, self.seconds = client, seconds
        self.bounds = {api: own if bound is None else bound for api, bound in waits.items()}
        self.silent_until: dict[Any, float] = {}  # node id → when it may be asked again
        self.rebootstrapping = False
        self.get_conn, self.metadata_update = client._get_conn, client._metadata_update

    def went_silent(self, node_id: Any) -> None:
        # Not on a single broker: nobody else to ask, and a loaded broker that answered late answers again.
        if len(self.client.cluster.brokers()) > 1:
            self.silent_until[node_id] = time.monotonic() + SILENT_S

    async def noting_silence(self, node_id: Any, answer: Awaitable[Any]) -> Any:
        try:
            return await answer
        except TimeoutError:
            self.went_silent(node_id)
            raise

    async def _get_conn(self, node_id: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self.silent_until.get(node_id, 0.0):
            return None  # as if it refused: the caller asks another broker, or retries after its backoff
        started = time.monotonic()
        conn = await self.get_conn(node_id, **kwargs)
        if conn is None:
            if time.monotonic() - started >= self.seconds:  # the connect timed out, not refused
                self.went_silent(node_id)
        elif not getattr(conn, "_timex_guarded", False):
            conn._timex_guarded = True
            send = conn.send

            def send_with_its_bound(request: Any, expect_response: bool = True) -> Any:
                # `send` reads `_request_timeout` before it returns its awaitable: set for this request only.
                conn._request_timeout = self.bounds.get(request.API_KEY, self.seconds)
                return self.noting_silence(node_id, send(request, expect_response))

            conn.send = send_with_its_bound
        return conn

    async def _metadata_update(self, cluster_metadata: Any, topics: Any) -> bool:
        if await self.metadata_update(cluster_metadata, topics):
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
