"""Ingestion service: consume `configs` → ingest (validate, download, prepare, plan units) → produce
`datasets`, `failures`, `progress`, and the request's entry in the index (`requests`) first, so readers
find it. Undecodable records go to `dead-letters`."""

from __future__ import annotations

import asyncio
import logging

import faust

from ingestion.ingest import fetcher, ingest_safely
from schemas import DecodeError, encode
from schemas.topics import CONFIGS, DATASETS, FAILURES, PROGRESS, REQUESTS, SERIES
from timex_stream.faust_app import create_app, decoded, raw_topic, run_worker, send_record
from timex_stream.intake import BadRequestIdError, Position, read_request
from timex_stream.logs import request_id_var
from timex_stream.records import failure
from timex_stream.request_index import index_record
from timex_stream.settings import Settings

log = logging.getLogger("ingestion")
settings = Settings.from_env()
app = create_app("ingestion", settings)
metrics = app.timex_metrics  # type: ignore[attr-defined]
configs, datasets = raw_topic(app, CONFIGS), raw_topic(app, DATASETS)
failures, progress, series = raw_topic(app, FAILURES), raw_topic(app, PROGRESS), raw_topic(app, SERIES)
index = raw_topic(app, REQUESTS)
topics = {t.get_topic_name(): t for t in (datasets, failures, progress, series)}
fetch = fetcher(settings)


@app.agent(configs)
async def ingest_configs(stream: faust.StreamT) -> None:
    async for event, request in decoded(app, stream, CONFIGS, decode=_read, on_poison=tell_sender):
        rid = request["request_id"]
        request_id_var.set(rid)
        await send_record(index, rid, index_record(rid, _position(event), request))
        with metrics.seconds.time():
            # Download and CSV parsing block: off the event loop, in a thread.
            outcome = await asyncio.get_running_loop().run_in_executor(None, ingest_safely, request, fetch,
                                                                         settings.limits)
        # The series and config first: the units point at where they landed (the claim check).
        sent = [await send_record(topics[topic.name], key, record) for topic, key, record in outcome.first()]
        landed = await asyncio.gather(*sent[len(sent) - len(outcome.stored):])
        units = outcome.datasets([(md.partition, md.offset) for md in landed])
        for key, record in units:
            await send_record(datasets, key, record)
        for topic, key, record in outcome.after():
            await send_record(topics[topic.name], key, record)
        for record in outcome.failures:
            metrics.failures.labels(record["stage"]).inc()
        metrics.produced.labels(DATASETS.name).inc(len(units))
        log.info("ingested: %d units, %d failures", len(units), len(outcome.failures))


def _position(event: faust.EventT) -> Position:
    msg = event.message
    # Faust keeps the broker's timestamp in seconds (ms / 1000): round back to the exact ms.
    return Position(msg.partition, msg.offset, round((msg.timestamp or 0) * 1000))


def _read(event: faust.EventT) -> dict:
    return read_request(event.key, event.value, _position(event))


async def tell_sender(event: faust.EventT, exc: DecodeError) -> None:
    """A record on `configs` that is no config, or names an unsafe request id: if the sender named a
    request id (the key), answer it there, under the key exactly as sent."""
    if not event.key:
        return
    rid = event.key.decode("utf-8", "replace")
    stage, message = (("request_id", str(exc)) if isinstance(exc, BadRequestIdError)
                      else ("decode", f"the record on 'configs' is not a TIMEX config: {exc}"))
    await send_record(index, rid, index_record(rid, _position(event)))
    await failures.send(key=event.key, value=encode("Failure", failure(rid, stage, message, fatal=True)))
    metrics.failures.labels(stage).inc()


def main(s: Settings) -> int:
    return run_worker(app, "ingestion", s)
