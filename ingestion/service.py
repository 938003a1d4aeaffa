"""Ingestion service: consume `configs` → ingest (validate, download, prepare, plan units) → publish the
request's entry in the index (`requests`) first, so readers find it, then `series`, `datasets`, `failures`
and `progress` (`timex_stream.runtime.fan_out.publish`). Undecodable records go to `dead-letters`.

A small request (timex_stream.runtime.fast_lane) has its units run here, in a worker process of the service's
own (a bounded unit pool, as the predictor's), and is decided here: its `best-models`, failures and progress go
out in place of its Datasets (a failure or a time-out there sends the Datasets instead), its index entry with
them, after its `series`; a marker in the service's table (ingestion.answered) keeps a config delivered again from
being answered twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import faust

from ingestion.answered import Answered
from ingestion.in_place import InPlace
from ingestion.ingest import fetcher, ingest_inline, ingest_safely
from ingestion.standing import LiveLimits
from schemas import DecodeError, Topic, encode
from schemas.topics import (
    BEST_MODELS,
    CONFIGS,
    DATASETS,
    FAILURES,
    PREDICTIONS,
    PROGRESS,
    REQUESTS,
    SERIES,
    STANDING,
)
from timex_stream.runtime.fan_out import Landed, publish
from timex_stream.runtime.faust_app import create_app, decoded, raw_topic, run_worker, send_record
from timex_stream.runtime.intake import BadRequestIdError, Position, read_request
from timex_stream.runtime.kafka import source_topic_check
from timex_stream.runtime.logs import handling
from timex_stream.runtime.records import failure, now_ms
from timex_stream.runtime.request_index import index_record
from timex_stream.runtime.settings import Settings

log = logging.getLogger("ingestion")
# Configs handled at once: one is ingested while the others wait for the fast lane's worker or for the broker (one
# at a time, the ingestion's waits capped its rate below what its CPU allows). At 181 trivial configs/s two in hand
# took 160-175 a second (each in hand ~11 ms, most of it waiting), four 176 with a p99 of 0.6 s (bench/throughput.py).
CONCURRENCY = 4


class ChannelSender:
    """The fan-out's `Sender` over the app's topics (Faust's producer); counts the failures and answers sent."""

    def __init__(self, app: faust.App, topics: Sequence[Topic]) -> None:
        self.channels = {t.name: raw_topic(app, t) for t in topics}
        self.metrics = app.timex_metrics  # type: ignore[attr-defined]

    async def send(self, topic: Topic, key: str, record: dict[str, Any]) -> Any:
        sent = await send_record(self.channels[topic.name], key, record)
        if topic == FAILURES:
            self.metrics.failures.labels(record["stage"]).inc()
        elif topic in (DATASETS, BEST_MODELS):
            self.metrics.produced.labels(topic.name).inc()
        return sent

    async def landed(self, handles: Sequence[Any]) -> list[Landed]:
        return [(md.partition, md.offset) for md in await asyncio.gather(*handles)]


def build_app(settings: Settings) -> faust.App:
    app = create_app("ingestion", settings)
    metrics = app.timex_metrics  # type: ignore[attr-defined]
    configs = raw_topic(app, CONFIGS)
    sender = ChannelSender(app, (REQUESTS, SERIES, DATASETS, PREDICTIONS, BEST_MODELS, FAILURES, PROGRESS, STANDING))
    fetch = fetcher(settings)
    check_topic = source_topic_check(settings.bootstrap_servers or "")  # a live request's source topic
    live_limits = LiveLimits(max_window_points=settings.live_max_window_points,
                             max_series=settings.live_max_series)
    fast_work = settings.fast_lane_max_work
    in_place = InPlace(settings, metrics.registry) if fast_work > 0 else None  # the fast lane's worker
    # Keyed by request id, as `configs`: written while processing a config, so on its partition.
    table = app.Table("answered", key_type=str, partitions=CONFIGS.partitions)
    answered = Answered(table, settings.validator_forget_s)

    async def tell_sender(event: faust.EventT, exc: DecodeError) -> None:
        """A record on `configs` that is no config, or names an unsafe request id: if the sender named a
        request id (the key), answer it there, under the key exactly as sent."""
        if not event.key:
            return
        rid = event.key.decode("utf-8", "replace")
        stage, message = (("request_id", str(exc)) if isinstance(exc, BadRequestIdError)
                          else ("decode", f"the record on 'configs' is not a TIMEX config: {exc}"))
        await sender.send(REQUESTS, rid, index_record(rid, _position(event)))
        answer = encode("Failure", failure(rid, stage, message, fatal=True))
        await sender.channels[FAILURES.name].send(key=event.key, value=answer)
        metrics.failures.labels(stage).inc()

    @app.agent(configs, concurrency=CONCURRENCY)
    async def ingest_configs(stream: faust.StreamT) -> None:
        async for event, request in decoded(app, stream, CONFIGS, decode=_read, on_poison=tell_sender):
            rid, at = request["request_id"], _position(event)
            handling(rid, request.get("config_json"))
            answered.forget(at, now_ms())
            if not answered.claim(rid):
                log.info("delivered again: %s", "answered in place already, not again" if answered.seen(rid)
                         else "the first delivery is being handled")
                continue
            try:
                with metrics.seconds.time():
                    outcome = ingest_inline(request, settings.limits, live_limits, fast_work)
                    if outcome is None:  # downloads, pandas' CSV path, slow features: off the event loop, in a thread
                        outcome = await asyncio.get_running_loop().run_in_executor(
                            None, ingest_safely, request, fetch, settings.limits, check_topic, live_limits, fast_work)
                units = await publish(sender, index_record(rid, at, request), outcome,
                                      in_place.answer if in_place else None)
                here = outcome.in_place and outcome.units > 0 and not units
                if here:  # after the answer's records, on the same producer (ingestion.answered)
                    answered.mark(rid, at, now_ms())
            finally:
                answered.release(rid)
            log.info("ingested: %d units%s, %d failures", outcome.units, " answered in place" if here else "",
                     len(outcome.failures))

    @table.on_recover
    async def index_recovered_markers() -> None:
        answered.recover()

    if in_place is not None:
        @app.task
        async def _start_pool() -> None:
            await in_place.pool.start()

        @app.on_before_shutdown.connect
        def _stop_pool(*_: object, **__: object) -> None:
            in_place.pool.close()

    return app


def _position(event: faust.EventT) -> Position:
    msg = event.message
    # Faust keeps the broker's timestamp in seconds (ms / 1000): round back to the exact ms.
    return Position(msg.partition, msg.offset, round((msg.timestamp or 0) * 1000))


def _read(event: faust.EventT) -> dict:
    return read_request(event.key, event.value, _position(event))


def main(s: Settings) -> int:
    return run_worker(build_app(s), "ingestion", s)
