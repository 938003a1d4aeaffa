"""Ingestion service: consume `configs` → ingest (validate, download, prepare, plan units) → publish the
request's entry in the index (`requests`) first, so readers find it, then `series`, `datasets`, `failures`
and `progress` (`timex_stream.runtime.fan_out.publish`). Undecodable records go to `dead-letters`.

A small request (timex_stream.runtime.fast_lane) has its units run here, in a worker process of the service's
own (a bounded unit pool, as the predictor's), and is decided here: its `best-models`, failures and progress go
out in place of its Datasets (a failure or a time-out there sends the Datasets instead), its index entry with
them, after its `series`; a marker in the service's table (ingestion.answered) keeps a config delivered again from
being answered twice.

A plain confluent-kafka consumer, not a Faust app (issue 22): a trivial request's every event passes here, and
Faust's stream, its aiokafka clients in Python and their event-loop hand-offs cost about as much CPU as the
ingestion's own work. The consumer's thread takes configs (at most IN_HAND at once), the event loop handles each
(`_handle`: the flow above), and a config's offset is committed once it and the configs before it are handled
and everything they sent is acknowledged (timex_stream.runtime.in_order): at least once, as the Faust agents.
The markers' table lives in memory and in its changelog (timex_stream.runtime.changelog_table), read back when
the group gives this process a partition.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
import time
from typing import Any

from aiohttp import web
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingestion.answered import Answered
from ingestion.in_place import InPlace
from ingestion.ingest import fetcher, ingest_inline, ingest_safely
from ingestion.standing import LiveLimits
from schemas import DecodeError, encode
from schemas.topics import CONFIGS, DEAD_LETTERS, FAILURES, REQUESTS
from schemas.wiring import INGESTION
from timex_stream.runtime.async_producer import RequestSender, producer
from timex_stream.runtime.changelog_table import ChangelogTable, read_partitions
from timex_stream.runtime.fan_out import publish
from timex_stream.runtime.in_order import InOrder
from timex_stream.runtime.intake import BadRequestIdError, Position, position_of, read_request
from timex_stream.runtime.kafka import consumer, create_missing, source_topic_check
from timex_stream.runtime.logs import configure_logging, handling
from timex_stream.runtime.metrics import Metrics
from timex_stream.runtime.ports import free_port
from timex_stream.runtime.records import failure, now_ms
from timex_stream.runtime.request_index import index_record
from timex_stream.runtime.settings import Settings

log = logging.getLogger("ingestion")
# Configs handled at once: one is ingested while the others wait for the fast lane's worker or for the broker (one
# at a time, the ingestion's waits capped its rate below what its CPU allows). At 181 trivial configs/s two in hand
# took 160-175 a second (each in hand ~11 ms, most of it waiting), four 176 with a p99 of 0.6 s (bench/throughput.py).
IN_HAND = 4
STOP_S = 30.0  # a stop (or a rebalance) waits this long for the configs in hand
TABLE = "answered"


class Ingestion:
    """The service; `run` until SIGTERM/SIGINT. Building it touches no broker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics("ingestion", settings.restarts)
        self.bootstrap = settings.bootstrap_servers or ""
        self.live_limits = LiveLimits(max_window_points=settings.live_max_window_points,
                                      max_series=settings.live_max_series)
        self.fetch = fetcher(settings)
        self.check_topic = source_topic_check(self.bootstrap)  # a live request's source topic
        self.in_place = InPlace(settings, self.metrics.registry) if settings.fast_lane_max_work > 0 else None
        self.in_order = InOrder()
        self.to_store: dict[int, int] = {}  # partition → offset to commit, from the handlers to the consumer's thread
        self.lock = threading.Lock()
        self.room = threading.Semaphore(IN_HAND)
        self.assigned: list[int] = []
        self.started = time.time()
        self.stopping = threading.Event()  # the consumer's thread takes nothing more
        self.handled = threading.Event()  # ... and commits and leaves once the configs in hand are handled
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        if not self.bootstrap:
            raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set (`timex-stream up` sets it for its services)")
        self.loop = asyncio.get_running_loop()
        changelog = INGESTION.changelog(TABLE)
        await asyncio.to_thread(create_missing, self.bootstrap,
                                {changelog: (CONFIGS.partitions, {"cleanup.policy": "compact"})})
        self.producer = producer(self.bootstrap, self.settings)
        await self.producer.start()
        self.metrics.produce.install()
        watching = self.loop.create_task(self._watch_writes())
        # A marker goes to the partition of the config it was written for: where that config's redelivery is read.
        self.table = ChangelogTable(changelog, lambda _, marker: marker["partition"])
        self.answered = Answered(self.table, self.settings.validator_forget_s)
        web_runner = await self._serve_web()
        if self.in_place is not None:
            await self.in_place.pool.start()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, stop.set)
        taking = threading.Thread(target=self._take, name="configs-consumer", daemon=True)
        taking.start()
        # The ~160k objects of the imports and the start never die: frozen, a full collection walks only what came
        # since (each walked them all: 120-270 ms with the loop stopped, in the Faust services).
        gc.collect()
        gc.freeze()
        await stop.wait()
        log.info("stopping: %d configs in hand", self.in_order.in_hand())
        self.stopping.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=STOP_S)
        self.handled.set()
        await asyncio.to_thread(taking.join, STOP_S)
        watching.cancel()
        await self.producer.stop()  # sends what is left first
        if self.in_place is not None:
            self.in_place.pool.close()
        await web_runner.cleanup()

    # --- the consumer's thread ---------------------------------------------------------------------------------

    def _take(self) -> None:
        """Take configs while the service runs, at most IN_HAND at once; each goes to the loop (`_handle`)."""
        # Offsets stored by `_store` are committed every second (and at a revocation and the stop); a killed process's
        # partitions move after 10 s, as the Faust services'; four configs in hand stop the polls (IN_HAND), so the
        # group waits up to 10 minutes for a poll before it deems the process stuck (a big request's ingestion is
        # bounded well under that by its limits).
        conf = {"enable.auto.commit": True, "enable.auto.offset.store": False, "auto.commit.interval.ms": 1000,
                "session.timeout.ms": 10_000, "heartbeat.interval.ms": 2000, "max.poll.interval.ms": 600_000}
        cons = consumer(self.bootstrap, INGESTION.group, **conf)
        cons.subscribe([CONFIGS.name], on_assign=self._on_assign, on_revoke=self._on_revoke,
                       on_lost=self._on_revoke)
        try:
            while not self.stopping.is_set():
                self._store(cons)
                if not self.room.acquire(timeout=0.2):
                    continue
                msg = cons.poll(0.2)
                if msg is None or msg.error():
                    if msg is not None:
                        log.warning("configs: %s", msg.error())
                    self.room.release()
                    continue
                self.in_order.taken(msg.partition(), msg.offset())
                self.loop.call_soon_threadsafe(self._start, msg)
            self.handled.wait(STOP_S)
            self._store(cons)
            self._commit(cons)
        finally:
            cons.close()

    def _on_assign(self, cons: Consumer, partitions: list[TopicPartition]) -> None:
        """Read the markers of the partitions given to this process back from the changelog, before any of their
        configs is handled (this runs within the poll that would hand them out)."""
        numbers = [tp.partition for tp in partitions]
        found = read_partitions(self.bootstrap, self.table.topic, numbers)
        asyncio.run_coroutine_threadsafe(self._recovered(found), self.loop).result(STOP_S)
        self.assigned = sorted(set(self.assigned) | set(numbers))
        log.info("assigned configs partitions %s: %d markers read back", numbers,
                 sum(len(v) for v in found.values()))

    async def _recovered(self, found: dict[int, dict[str, Any]]) -> None:
        self.table.load(found)
        self.answered.recover()

    def _on_revoke(self, cons: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        if not self.in_order.wait_handled(numbers, STOP_S):
            log.warning("partitions %s revoked with configs still in hand: they come again", numbers)
        self._store(cons)
        self._commit(cons)
        self.in_order.drop(numbers)
        asyncio.run_coroutine_threadsafe(self._dropped(numbers), self.loop).result(STOP_S)
        self.assigned = [p for p in self.assigned if p not in numbers]

    async def _dropped(self, partitions: list[int]) -> None:
        self.table.drop(partitions)
        self.answered.recover()

    @staticmethod
    def _commit(cons: Consumer) -> None:
        try:
            cons.commit(asynchronous=False)
        except KafkaException as exc:  # nothing stored since the last commit, or the group moved on
            if "NO_OFFSET" not in str(exc):
                log.warning("committing configs offsets: %s", exc)

    # --- the event loop -----------------------------------------------------------------------------------------

    def _start(self, msg: Message) -> None:
        task = self.loop.create_task(self._handle(msg))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _handle(self, msg: Message) -> None:
        """One config, from the record to everything it sends acknowledged; then its offset may be committed."""
        sender = RequestSender(self.producer, INGESTION, self.metrics)
        at = position_of(msg)
        try:
            self.metrics.consumed.labels(CONFIGS.name).inc()
            try:
                request = read_request(msg.key(), msg.value(), at)
            except DecodeError as exc:
                await self._dead_letter(sender, msg, exc)
            else:
                await self._ingest(sender, request, at)
        except Exception:  # a bug: the sender still hears of it, and the next config is handled
            log.exception("the ingestion failed on configs[%d]@%d", at.partition, at.offset)
            rid = (msg.key() or b"").decode("utf-8", "replace")
            if rid:
                await sender.send(FAILURES, rid, failure(rid, "ingestion", "the ingestion failed on this request "
                                                         "(an internal error, logged); submit it again", fatal=True))
        finally:
            await self.table.send(self.producer)  # its markers, after the request's records (ingestion.answered)
            errors = await sender.acknowledged()
            await self.table.acknowledged()
            if errors:
                log.error("configs[%d]@%d: %d records were not acknowledged (%s)", at.partition, at.offset,
                          len(errors), errors[0])
            commit = self.in_order.done(at.partition, at.offset)
            if commit is not None:
                with self.lock:
                    self.to_store[at.partition] = commit
            self.room.release()

    async def _ingest(self, sender: RequestSender, request: dict[str, Any], at: Position) -> None:
        rid = request["request_id"]
        handling(rid, request.get("config_json"))
        self.answered.forget(at, now_ms())
        if not self.answered.claim(rid):
            log.info("delivered again: %s", "answered in place already, not again" if self.answered.seen(rid)
                     else "the first delivery is being handled")
            return
        limits, fast_work, here = self.settings.limits, self.settings.fast_lane_max_work, False
        try:
            with self.metrics.seconds.time():
                outcome = ingest_inline(request, limits, self.live_limits, fast_work)
                if outcome is None:  # downloads, pandas' CSV path, slow features: off the event loop, in a thread
                    outcome = await self.loop.run_in_executor(None, ingest_safely, request, self.fetch, limits,
                                                              self.check_topic, self.live_limits, fast_work)
                units = await publish(sender, index_record(rid, at, request), outcome,
                                      self.in_place.answer if self.in_place else None)
                here = outcome.in_place and outcome.units > 0 and not units
                if here:  # after the answer's records, on the same producer (ingestion.answered)
                    self.answered.mark(rid, at, now_ms())
        finally:
            self.answered.release(rid)
        log.info("ingested: %d units%s, %d failures", outcome.units, " answered in place" if here else "",
                 len(outcome.failures))

    async def _dead_letter(self, sender: RequestSender, msg: Message, exc: DecodeError) -> None:
        """Park the record on the dead-letter topic with where it came from and why; if the sender named a
        request id (the key), answer it there, under the key exactly as sent."""
        reason = str(exc)
        headers = {"source.topic": CONFIGS.name.encode(), "source.partition": str(msg.partition()).encode(),
                   "source.offset": str(msg.offset()).encode(), "error": reason.encode()[:2000]}
        await sender.send_raw(DEAD_LETTERS, CONFIGS.name.encode(), msg.value(), headers=headers)
        self.metrics.dead_letters.labels(CONFIGS.name).inc()
        log.warning("dead letter from %s[%s]@%s: %s", CONFIGS.name, msg.partition(), msg.offset(), reason)
        if not msg.key():
            return
        rid = msg.key().decode("utf-8", "replace")
        stage, message = (("request_id", reason) if isinstance(exc, BadRequestIdError)
                          else ("decode", f"the record on 'configs' is not a TIMEX config: {exc}"))
        await sender.send(REQUESTS, rid, index_record(rid, position_of(msg)))
        answer = encode(FAILURES.value, failure(rid, stage, message, fatal=True))  # type: ignore[arg-type]
        await sender.send_raw(FAILURES, msg.key(), answer, FAILURES.partition_of(rid), counted=stage)

    def _store(self, cons: Consumer) -> None:
        """Store the offsets the handlers finished (on the consumer's thread: a confluent-kafka consumer is not
        thread-safe, and a store from the event loop waited on the poll in progress); the consumer commits them."""
        with self.lock:
            offsets, self.to_store = self.to_store, {}
        if not offsets:
            return
        try:
            cons.store_offsets(offsets=[TopicPartition(CONFIGS.name, p, o) for p, o in offsets.items()])
        except KafkaException as exc:  # revoked meanwhile: its next owner reads from the last commit
            log.info("configs offsets %s not stored: %s", offsets, exc)

    async def _watch_writes(self) -> None:
        while True:  # writes the brokers refuse for long: said once (timex_stream.runtime.produce_watch)
            await asyncio.sleep(1.0)
            self.metrics.produce.check()

    async def _serve_web(self) -> web.AppRunner:
        app = web.Application()

        async def health(_: web.Request) -> web.Response:
            return web.json_response({"status": "ok", "service": "ingestion",
                                      "assigned": [f"{CONFIGS.name}:{p}" for p in self.assigned],
                                      "uptime_s": round(time.time() - self.started, 1)})

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=generate_latest(self.metrics.registry),
                                content_type=CONTENT_TYPE_LATEST.split(";")[0])

        app.add_routes([web.get("/health", health), web.get("/metrics", metrics)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.settings.web_host, self.settings.web_port or free_port()).start()
        return runner


def main(s: Settings) -> int:
    configure_logging("ingestion", s.log_level)
    asyncio.run(Ingestion(s).run())
    return 0
