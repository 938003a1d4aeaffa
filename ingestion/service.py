"""Ingestion service: consume `configs` → ingest (validate, download, prepare, plan units) → publish the
request's entry in the index (`requests`) first, so readers find it, then `series`, `datasets`, `failures`
and `progress` (`timex_stream.runtime.fan_out.publish`). Undecodable records go to `dead-letters`.

A small request (timex_stream.runtime.fast_lane) has its units run here (a few closed-form ones on this thread,
others in a worker process of the service's own: a bounded unit pool, as the predictor's), and is decided here: its
`best-models`, failures and progress go out in place of its Datasets (a failure or a time-out there sends the
Datasets instead), its index entry with them, after its `series`; a marker in the service's table
(ingestion.answered) keeps a config delivered again from being answered twice.

No Faust app (issue 22): every event of a trivial request passes here, and Faust's stream with its aiokafka consumer
cost about as much CPU as the ingestion's own work. A confluent-kafka consumer takes the configs, four in hand at
once, and commits each once it is handled (timex_stream.runtime.consumer_loop); the records go out through aiokafka's
producer (timex_stream.runtime.async_producer); the markers' table is written through to its changelog and read back
when the group gives this process a partition (timex_stream.runtime.changelog_table).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Any

from confluent_kafka import Message

from ingestion.answered import Answered
from ingestion.in_place import InPlace
from ingestion.ingest import fetcher, ingest_inline, ingest_safely
from ingestion.standing import LiveLimits
from schemas import DecodeError, encode
from schemas.topics import CONFIGS, DEAD_LETTERS, FAILURES, REQUESTS
from schemas.wiring import INGESTION
from timex_stream.runtime.async_producer import RequestSender, aiokafka_producer
from timex_stream.runtime.changelog_table import ChangelogTable, read_partitions
from timex_stream.runtime.consumer_loop import ConsumerLoop
from timex_stream.runtime.fan_out import publish
from timex_stream.runtime.health_server import serve_health
from timex_stream.runtime.intake import BadRequestIdError, Position, position_of, read_request
from timex_stream.runtime.kafka import create_missing, dead_letter_headers, source_topic_check
from timex_stream.runtime.logs import configure_logging, handling
from timex_stream.runtime.metrics import Metrics
from timex_stream.runtime.records import failure, now_ms
from timex_stream.runtime.request_index import index_record
from timex_stream.runtime.settings import Settings

log = logging.getLogger("ingestion")
# Configs handled at once: one is ingested while the others wait for the broker or the fast lane's worker (one at
# a time, the ingestion's waits capped its rate below what its CPU allows). At 181 trivial configs/s two in hand
# took 160-175 a second (each in hand ~11 ms, most of it waiting), four 176 with a p99 of 0.6 s (bench/throughput.py,
# with the units in the worker; on this thread since, four pass 215/s).
IN_HAND = 4
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
        self.intake = ConsumerLoop(self.bootstrap, INGESTION.group, CONFIGS, IN_HAND, self._handle,
                                   on_assign=self._read_back, on_revoke=self._let_go)
        # A marker goes to the partition of the config it was written for: where that config's redelivery is read.
        self.table = ChangelogTable(INGESTION.changelog(TABLE), lambda _, marker: marker["partition"])
        self.answered = Answered(self.table, settings.validator_forget_s)

    async def run(self) -> None:
        if not self.bootstrap:
            raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set (`timex-stream up` sets it for its services)")
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(create_missing, self.bootstrap,
                                {self.table.topic: (CONFIGS.partitions, {"cleanup.policy": "compact"})})
        self.producer = aiokafka_producer(self.bootstrap, self.settings)
        await self.producer.start()
        self.metrics.produce.install()
        watching = loop.create_task(self._watch_writes())
        web = await serve_health("ingestion", self.settings.web_host, self.settings.web_port, self.metrics.registry,
                                 lambda: [f"{CONFIGS.name}:{p}" for p in self.intake.assigned])
        if self.in_place is not None:
            await self.in_place.start()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # The ~160k objects of the imports and the start never die: frozen, a full collection walks only what came
        # since (each walked them all: 120-270 ms with the loop stopped, in the Faust services).
        gc.collect()
        gc.freeze()
        await self.intake.run(stop)
        watching.cancel()
        await self.producer.stop()  # sends what is left first
        if self.in_place is not None:
            self.in_place.close()
        await web.cleanup()

    async def _handle(self, msg: Message) -> None:
        """One config: read it, ingest it, publish what it makes; returns once all of that is acknowledged."""
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
                    outcome = await asyncio.get_running_loop().run_in_executor(
                        None, ingest_safely, request, self.fetch, limits, self.check_topic, self.live_limits, fast_work)
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
        headers = dead_letter_headers(CONFIGS.name, msg.partition(), msg.offset(), reason)
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

    async def _read_back(self, partitions: list[int]) -> None:
        """The markers of the partitions the group gave this process, read back from the changelog before any of
        their configs is handled."""
        found = await asyncio.to_thread(read_partitions, self.bootstrap, self.table.topic, partitions)
        self.table.load(found)
        self.answered.recover()
        log.info("assigned configs partitions %s: %d markers read back", partitions,
                 sum(len(v) for v in found.values()))

    async def _let_go(self, partitions: list[int]) -> None:
        self.table.drop(partitions)
        self.answered.recover()

    async def _watch_writes(self) -> None:
        while True:  # writes the brokers refuse for long: said once (timex_stream.runtime.produce_watch)
            await asyncio.sleep(1.0)
            self.metrics.produce.check()


def main(s: Settings) -> int:
    configure_logging("ingestion", s.log_level)
    asyncio.run(Ingestion(s).run())
    return 0
