"""The Faust app factory: one app (= one consumer group) per service, with health and metrics pages.

Records are bytes on every topic (`raw` serializers): the services decode with `schemas.codec` themselves,
so a payload that does not decode becomes a dead letter instead of crashing the agent.

Each app carries its service's declaration (`schemas.wiring`), which the ACLs are made from: a channel on a
topic it does not name, a send to a topic it does not produce, or agents and tables other than declared fail
(at start, or at the send) instead of being denied by the broker in a deployment.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas import BY_NAME, DecodeError, Topic, decode_as, encode
from schemas.topics import DEAD_LETTERS
from schemas.wiring import WIRING, Wiring
from timex_stream.runtime.async_producer import GUARANTEES, LINGER_MS, METADATA_MAX_AGE_MS
from timex_stream.runtime.faust_delivery import AtLeastOnceApp, AtLeastOnceConsumer, AtLeastOnceConsumerThread
from timex_stream.runtime.fetch_backoff import shorten_prefetch_backoff
from timex_stream.runtime.kafka import admin as kafka_admin
from timex_stream.runtime.kafka import create_missing, dead_letter_headers
from timex_stream.runtime.metrics import Metrics
from timex_stream.runtime.ports import free_port
from timex_stream.runtime.replication import Replication, cluster_replication
from timex_stream.runtime.settings import Settings
from timex_stream.runtime.silent_broker import bound_consumer, bound_producer, check_aiokafka_version

log = logging.getLogger(__name__)


class WiringError(RuntimeError):
    """The app uses Kafka otherwise than its service declares (schemas.wiring)."""


class _IdempotentProducer(AIOKafkaProducer):
    # Faust makes its aiokafka producer idempotent only inside transactions (exactly_once); ours is always.
    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), **GUARANTEES}

    def create_batch(self) -> Any:
        """An empty aiokafka batch (aiokafka's public `create_batch`): records appended to it cost no future and no
        coroutine each (the live service's revisions: live/revisions.py)."""
        return self._ensure_producer().create_batch()

    async def send_batch(self, batch: Any, topic: str, partition: int) -> Any:
        """Queue a closed batch for `topic`'s `partition`; → the future of its acknowledgement."""
        return await self._ensure_producer().send_batch(batch, topic, partition=partition)

    def _new_producer(self, transactional_id: str | None = None) -> Any:
        producer = super()._new_producer(transactional_id)
        bound_producer(producer.client)  # a broker gone silent costs seconds, not its silence (silent_broker.py)
        return producer


class _ConsumerThread(AtLeastOnceConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        bound_consumer(consumer._client)  # a broker gone silent costs seconds, not its silence (silent_broker.py)
        shorten_prefetch_backoff(consumer)  # a record waiting to be taken holds no fetch 100 ms (fetch_backoff.py)
        return consumer


class _TimexConsumer(AtLeastOnceConsumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class TimexApp(AtLeastOnceApp):
    """The services' app: an idempotent producer, and internal topics (changelogs, the leader topic, repartitions)
    replicated as the cluster's size says (`cluster_replication`), decided at start: building an app dials nothing.
    Their `min.insync.replicas` is the broker default (2 on a cluster of 3 or more: the embedded cluster and the
    Strimzi production overlay set it)."""

    timex_replication_fixed = False  # True when the caller gave topic_replication_factor
    consumer_class = _TimexConsumer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_aiokafka_version()  # silent_broker.py sets aiokafka internals written for one version
        super().__init__(*args, **kwargs)

    def _new_producer(self) -> Any:
        self.transport.Producer = _IdempotentProducer  # this app's transport only
        return super()._new_producer()

    async def on_first_start(self) -> None:
        if not self.timex_replication_fixed:
            bootstrap = ",".join(f"{u.host}:{u.port}" for u in self.conf.broker)
            rep = await asyncio.get_running_loop().run_in_executor(
                None, lambda: cluster_replication(kafka_admin(bootstrap)))
            self.conf.topic_replication_factor = rep.factor
        await super().on_first_start()


def create_app(service: str, settings: Settings, wiring: Wiring | None = None, **overrides: Any) -> faust.App:
    """The app of `service`, wired as `schemas.wiring.WIRING[service]` declares (or as `wiring`, for an app of
    the tests)."""
    if wiring is None:
        if service not in WIRING:
            raise WiringError(f"{service!r} has no declaration in schemas.wiring.WIRING")
        wiring = WIRING[service]
    if not settings.bootstrap_servers:
        raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set (`timex-stream up` sets it for its services)")
    # Per process: two predictors on one host must not share it (memory tables keep nothing there anyway).
    datadir = settings.data_dir / "faust" / f"{service}-{os.getpid()}"
    datadir.mkdir(parents=True, exist_ok=True)
    conf: dict[str, Any] = dict(
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",  # tables live in memory, rebuilt from their changelog topics on start
        datadir=str(datadir),
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port or free_port(),
        web_in_thread=False,
        topic_partitions=BY_NAME["predictions"].partitions,  # changelogs co-partitioned with the sources
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",  # a new group starts from what was produced before it joined
        producer_acks=-1,
        # A record waits up to 1 ms for the records its handler sends next: without it each handler's first send
        # left in a produce request of its own (a trivial request's ingestion sent 4, its validator 2; with it
        # 2 and 1), and the broker's CPU goes by requests far more than by records.
        producer_linger=LINGER_MS / 1000,
        # Offsets are committed once a second (or every 100 records): a redelivery after a crash is
        # harmless (results are keyed by unit), a commit per record costs a broker round trip each.
        broker_commit_every=100,
        # A killed worker's partitions move to the others after 10 s, not Faust's default 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        broker_commit_interval=1.0,
        # aiokafka asks a partition's old leader for offsets again and again after a leader change without
        # refreshing its metadata (the offset-reset path of its fetcher): on a 3-broker cluster a predictor sat
        # 2+ minutes on "Failed fetch offsets from 1: NotLeaderForPartitionError", doing nothing, after two brokers
        # went down and came back. Metadata at most 5 s old bounds that (the default is 5 minutes).
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        # The producer's too: its metadata lists the brokers it may ask for more, and one taken while two brokers
        # were down named only the third; kept for Faust's default 5 minutes, the producer then stood still when
        # that broker went silent, asking nobody else (silent_broker.py also asks the bootstrap servers then).
        producer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        stream_wait_empty=False,
        autodiscover=False,
        logging_config=None,
    )
    if settings.kafka_security_protocol == "SASL_SSL":
        cafile = settings.kafka_ssl_ca_location
        conf["broker_credentials"] = faust.SASLCredentials(
            username=settings.kafka_sasl_username, password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism or "SCRAM-SHA-512",
            ssl_context=ssl.create_default_context(cafile=cafile))
    conf.update(overrides)
    app = TimexApp(wiring.group, **conf)  # the app id is the group id and its internal topics' prefix
    app.timex_replication_fixed = "topic_replication_factor" in overrides
    app.timex_wiring = wiring  # type: ignore[attr-defined]
    app.timex_channels = set()  # type: ignore[attr-defined]  # the topics raw_topic opened (a test reads them)
    app.timex_metrics = Metrics(service, settings.restarts)  # type: ignore[attr-defined]
    app.timex_started = time.time()  # type: ignore[attr-defined]

    @app.task
    async def freeze_startup_objects() -> None:
        # The ~160k objects of the imports (pandas, statsmodels, Faust) and the start-up never die; left in the
        # collector, each full collection walked them all: 120 to 270 ms with the event loop stopped (a
        # latency spike) and CPU on every collection. Frozen, a full collection walks only what came since.
        gc.collect()
        gc.freeze()

    @app.timer(1.0)
    async def watch_writes() -> None:
        app.timex_metrics.produce.check()  # type: ignore[attr-defined]

    @app.page("/health")
    async def health(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment()) if app.consumer else []
        return web.json({"status": "ok", "service": service, "assigned": assigned,
                         "uptime_s": round(time.time() - app.timex_started, 1)})  # type: ignore[attr-defined]

    @app.page("/metrics")
    async def metrics(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.bytes(generate_latest(app.timex_metrics.registry),  # type: ignore[attr-defined]
                         content_type=CONTENT_TYPE_LATEST.split(";")[0])

    return app


def raw_topic(app: faust.App, topic: Topic) -> faust.TopicT:
    """A bytes channel on `topic`, which the app's declaration must name (consumed or produced)."""
    wiring: Wiring = app.timex_wiring  # type: ignore[attr-defined]
    if topic.name not in wiring.channels:
        raise WiringError(f"{wiring.service} opens {topic.name!r}, which schemas.wiring does not declare for it "
                          f"(it declares {sorted(wiring.channels)})")
    app.timex_channels.add(topic.name)  # type: ignore[attr-defined]
    return app.topic(topic.name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=topic.partitions, internal=False)


async def send_record(channel: faust.TopicT, key: str, record: dict[str, Any]) -> Awaitable[Any]:
    """Encode `record` with its catalogue topic's schema and send it to the partition the catalogue places
    `key` on (the Faust twin of `timex_stream.runtime.kafka.send`). Returns what resolves to the record's metadata
    (partition, offset) once the broker has it."""
    topic = BY_NAME[channel.get_topic_name()]
    assert topic.value is not None, f"{topic.name} carries raw bytes"
    _check_produces(channel.app, topic.name)
    # Straight to the app's producer, as live/revisions.py sends its batches: Faust's channel layer (its message
    # futures, signals and sensors, ~25 µs a record) adds nothing to bytes on a raw topic.
    sent = await channel.app.producer.send(topic.name, key.encode(), encode(topic.value, record),
                                           topic.partition_of(key), None, None)
    return channel.app.timex_metrics.produce.track(sent)  # type: ignore[attr-defined]


async def send_dead_letter(app: faust.App, event: faust.EventT, reason: str) -> None:
    """Park an undecodable record on the dead-letter topic with where it came from and why."""
    msg = event.message
    headers = dead_letter_headers(msg.topic, msg.partition, msg.offset, reason)
    _check_produces(app, DEAD_LETTERS.name)
    await raw_topic(app, DEAD_LETTERS).send(key=msg.topic.encode(), value=msg.value, headers=headers)
    app.timex_metrics.dead_letters.labels(msg.topic).inc()  # type: ignore[attr-defined]
    log.warning("dead letter from %s[%s]@%s: %s", msg.topic, msg.partition, msg.offset, reason)


def _check_produces(app: faust.App, topic: str) -> None:
    wiring: Wiring = app.timex_wiring  # type: ignore[attr-defined]
    if topic not in wiring.produced:
        raise WiringError(f"{wiring.service} sends to {topic!r}, which schemas.wiring does not declare it produces")


def check_wiring(app: faust.App) -> None:
    """Raise unless the app's agents consume exactly the topics its declaration subscribes to and its tables are
    exactly the declared ones (their changelogs get ACLs). Channels and sends are checked as they are made."""
    wiring: Wiring = app.timex_wiring  # type: ignore[attr-defined]
    subscribed = {name for agent in app.agents.values() for name in agent.channel.topics}
    tables = {table.name for table in app.tables.values()}
    declared = {t.name for t in wiring.subscribes}
    if subscribed != declared or tables != set(wiring.tables):
        raise WiringError(f"{wiring.service}: agents on {sorted(subscribed)} and tables {sorted(tables)}, but "
                          f"schemas.wiring declares {sorted(declared)} and {sorted(wiring.tables)}")


# Outputs are flushed and their inputs acked once per batch (a checkpoint, as in Quix Streams): when no
# further event is waiting, after CHECKPOINT_EVENTS events, and at the latest CHECKPOINT_S after an event
# was processed. A flush waits for the broker's acknowledgement: once per record it cost a round trip each
# (the validator handles every unit alone, so that added up over a request of thousands of units).
CHECKPOINT_EVENTS = 100
CHECKPOINT_S = 0.2


async def decoded(app: faust.App, stream: faust.StreamT, topic: Topic,
                  decode: Callable[[faust.EventT], dict] | None = None,
                  on_poison: Callable[[faust.EventT, DecodeError], Awaitable[None]] | None = None,
                  ) -> AsyncIterator[tuple[faust.EventT, dict]]:
    """The stream's events with their records decoded (by default as the topic's schema); what does not
    decode goes to the dead-letter topic and the stream goes on.

    Acks are manual: an event is acked (so its offset may be committed) only once its processing is over
    and everything it produced, table changelog included, is flushed to the broker (see CHECKPOINT_EVENTS).
    Faust's own ack would also ack the event in flight when a stop interrupts it, and lose it; events
    processed but not checkpointed when the stream stops are not acked, so they come again (at least once).
    """
    manual = stream.noack()
    queue = getattr(manual.channel, "queue", None)  # the events fetched and waiting for this agent
    pending: list[faust.EventT] = []

    async def checkpoint() -> None:
        batch = pending[:]
        pending.clear()  # no await in between: two checkpoints never ack one event twice
        if batch:
            await app.producer.flush()
            for done in batch:
                await manual.ack(done)

    async def on_timer() -> None:
        while True:  # an agent idle with processed events must still let their offsets commit
            await asyncio.sleep(CHECKPOINT_S)
            await checkpoint()

    timer = asyncio.ensure_future(on_timer())
    try:
        async for event in manual.events():
            app.timex_metrics.consumed.labels(topic.name).inc()  # type: ignore[attr-defined]
            try:
                record = decode(event) if decode else decode_as(topic.value, event.value)  # type: ignore[arg-type]
            except DecodeError as exc:
                await send_dead_letter(app, event, str(exc))
                if on_poison is not None:
                    await on_poison(event, exc)
            else:
                yield event, record
            pending.append(event)
            if queue is None or queue.empty() or len(pending) >= CHECKPOINT_EVENTS:
                await checkpoint()
    finally:
        timer.cancel()


def _create_changelogs(app: faust.App) -> None:
    """Create the app's table changelogs (compacted, the table's partitions) before the worker starts. Faust
    declares them itself on start, but on a fresh broker under load its assignor once saw the live service's
    changelog missing from the metadata ("Ignoring missing topic"), and the table's agent then crashed with
    PartitionsMismatch for minutes, so the first standing request was never followed. Existing ones are kept."""
    if not app.tables:
        return
    bootstrap = ",".join(f"{u.host}:{u.port}" for u in app.conf.broker)
    fixed = getattr(app, "timex_replication_fixed", False)
    replication = Replication(app.conf.topic_replication_factor, 1) if fixed else None
    create_missing(bootstrap, {t.changelog_topic.get_topic_name(): (t.changelog_topic.partitions,
                                                                   {"cleanup.policy": "compact"})
                               for t in app.tables.values()}, replication)


def run_worker(app: faust.App, service: str, settings: Settings) -> int:
    """Run the app until SIGTERM/SIGINT (graceful: Faust commits offsets and stops the agents)."""
    from timex_stream.runtime.logs import configure_logging

    check_wiring(app)  # before anything starts: a service wired otherwise than its ACLs does not run
    configure_logging(service, settings.log_level)
    app.timex_metrics.produce.install()  # type: ignore[attr-defined]
    _create_changelogs(app)
    # override_logging=False: keep our JSON log lines instead of mode's own logging set-up.
    worker = faust.Worker(app, quiet=True, redirect_stdouts=False, override_logging=False)
    worker.execute_from_commandline()
    return 0
