"""confluent-kafka helpers: topic creation from the catalogue, producers and consumers with our defaults."""

from __future__ import annotations

import concurrent.futures
import gc
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from schemas import CATALOGUE, Topic, encode
from timex_stream.runtime.replication import Replication, cluster_replication
from timex_stream.runtime.settings import Settings


def _security() -> dict[str, str]:
    # SASL/TLS from the environment (Strimzi); every client below gets it, so no call site can forget.
    return Settings.from_env().kafka_client_config()


# Answers a broker gives while it (re)starts or moves leadership: worth asking again, not a failure.
_TRANSIENT = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TRANSPORT,
              KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN, KafkaError.REQUEST_TIMED_OUT,
              KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
              # On a cluster: a query in flight to a broker that died and left the metadata (librdkafka drops
              # its handle); asked again, it goes to the partition's new leader.
              KafkaError._DESTROY_BROKER,
              # A partition's new leader asked for offsets before it has caught up with the high watermark.
              KafkaError.OFFSET_NOT_AVAILABLE}
T = TypeVar("T")
# One metadata or offset query waits at most this long, and is asked again (`while_transient`) while the caller's
# timeout lasts: librdkafka sends it to the leader it knows, so a single long query to a broker that just died
# timed out before the partition's new leader (elected within seconds on a cluster) was ever asked.
ASK_S = 5.0
# A request unanswered this long fails (a fetch: this beyond its fetch.wait.max.ms) and librdkafka drops the
# connection and asks the metadata again: a broker that went silent without closing its sockets (a network
# partition, a paused process) hid its partitions' new leaders from a reader for librdkafka's default 60 s
# (the aiokafka clients of the services: silent_broker.py).
SOCKET_TIMEOUT_MS = 3000


def while_transient(call: Callable[[], T], timeout: float = 30.0) -> T:
    """`call()`, asked again (bounded by `timeout`) while the broker answers with a transient error, e.g.
    NOT_LEADER_FOR_PARTITION from a metadata or offset query just after a broker restart."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except KafkaException as exc:
            err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if err is None or not (err.retriable() or err.code() in _TRANSIENT) or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, **_security()})


def ensure_topics(bootstrap: str, topics: Iterable[Topic] = CATALOGUE, replication: Replication | None = None,
                  timeout: float = 30.0) -> list[str]:
    """Create the catalogue topics that do not exist yet (idempotent); returns the names created. Their
    replication follows the cluster's size (`cluster_replication`) unless `replication` is given."""
    topics = list(topics)
    return create_missing(bootstrap, {t.name: (t.partitions, t.config) for t in topics}, replication, timeout)


def failure(fut: concurrent.futures.Future[Any], timeout: float | None = None) -> BaseException | None:
    """The error an admin future ended with, or None, read without raising it. `fut.result()` would raise the
    stored exception here, giving it a traceback through this frame: future → exception → traceback → frame →
    future is a cycle, and it holds the AdminClient of the frame. The gc then destroys that client at some later
    moment, maybe after its broker is gone, and librdkafka's destroy can then wait forever for a broker thread
    (seen: a whole CI run hung in Admin_dealloc called from gc_collect_main)."""
    return fut.exception(timeout)


def collect_clients() -> None:
    """Destroy now, while their broker still runs, the clients that only cyclic garbage holds: called before a
    broker stops (see `failure` for what a later destroy can do)."""
    gc.collect()


def create_missing(bootstrap: str, topics: dict[str, tuple[int, dict[str, str]]],
                   replication: Replication | None = None, timeout: float = 30.0) -> list[str]:
    """Create the topics (name → partitions, config) that do not exist yet and wait for their leaders; returns
    the names created. Replication follows the cluster's size unless `replication` is given."""
    client = admin(bootstrap)
    existing = set(client.list_topics(timeout=timeout).topics)
    wanted = [name for name in topics if name not in existing]
    created: list[str] = []
    if wanted:
        # min.insync.replicas is the brokers' default (2 on a cluster of 3 or more: the embedded cluster and the
        # Strimzi production overlay set it), as for the topics Faust creates.
        replication_factor = (replication or cluster_replication(client, timeout)).factor
        futures = client.create_topics(
            [NewTopic(name, topics[name][0], replication_factor, config=topics[name][1]) for name in wanted],
            operation_timeout=timeout)
        for name, fut in futures.items():
            error = failure(fut)
            if error is None:
                created.append(name)
            elif not (isinstance(error, KafkaException) and error.args[0].name() == "TOPIC_ALREADY_EXISTS"):
                raise error  # TOPIC_ALREADY_EXISTS: another process raced us, fine
    _wait_for_leaders(client, list(topics), timeout)
    return created


def _wait_for_leaders(client: AdminClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        meta = client.list_topics(timeout=timeout).topics
        if all(n in meta and meta[n].partitions and all(p.leader >= 0 for p in meta[n].partitions.values())
               for n in names):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without leaders after {timeout} s: {names}")
        time.sleep(0.1)


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """What `producer` is built with (a test reads it: a librdkafka producer does not tell its config)."""
    # Idempotent: a retried send is deduplicated by the broker. Uncompressed, as the services' Faust producers send:
    # gzip took 1.0 ms of CPU a trivial config (19 kB of CSV) in its sender, the gateway or the CLI, more than the
    # broker spends on it, to save bytes no limit needs (a record's limit counts it uncompressed); a bench client
    # sending 150 configs/s spent 1.9 → 0.85 ms each, and their p50 went 28 → 20 ms. murmur2: the Java/aiokafka
    # partitioner, so a key lands on the same partition whether Faust or this producer sent it (Faust tables rely
    # on that).
    conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
            "compression.type": "none", "partitioner": "murmur2_random"}
    return {**conf, **_security(), **overrides}


def producer(bootstrap: str, **overrides: Any) -> Producer:
    return Producer(producer_config(bootstrap, **overrides))


def consumer(bootstrap: str, group: str, **overrides: Any) -> Consumer:
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "socket.timeout.ms": SOCKET_TIMEOUT_MS}
    return Consumer({**conf, **_security(), **overrides})


def send(prod: Producer, topic: Topic, key: str, record: dict[str, Any],
         on_delivery: Callable[[Any, Any], None] | None = None) -> None:
    """Encode `record` with the topic's value schema and produce it (call prod.flush() to wait);
    `on_delivery(error, message)` learns where it landed."""
    assert topic.value is not None, f"{topic.name} carries raw bytes"
    partition = topic.partition_of(key)
    placed: dict[str, Any] = {} if partition is None else {"partition": partition}
    if on_delivery is not None:
        placed["on_delivery"] = on_delivery
    prod.produce(topic.name, key=key.encode(), value=encode(topic.value, record), **placed)


def dead_letter_headers(topic: str, partition: int, offset: int, reason: str) -> dict[str, bytes]:
    """The headers of a record parked on `dead-letters`: where it came from and why (the reason cut to 2,000 bytes)."""
    return {"source.topic": topic.encode(), "source.partition": str(partition).encode(),
            "source.offset": str(offset).encode(), "error": reason.encode()[:2000]}


def source_topic_check(bootstrap: str, timeout: float = 5.0) -> Callable[[str], str | None]:
    """Whether a live request's source topic can be followed: the broker's metadata, asked with a timeout
    (the whole list, so that asking can never auto-create the topic). → why not, or None."""
    client: AdminClient | None = None

    def check(name: str) -> str | None:
        nonlocal client
        client = client or admin(bootstrap)
        try:
            topics = client.list_topics(timeout=timeout).topics
        except KafkaException as exc:
            return f"the cluster did not answer within {timeout:.0f} s ({exc})"
        meta = topics.get(name)
        if meta is None:
            return "no such topic on the cluster (create it first, or check the name)"
        if meta.error is not None:
            return f"the topic cannot be read: {meta.error.str()}"
        return None

    return check
