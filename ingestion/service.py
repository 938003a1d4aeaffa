"""Ingestion service: consume `configs` → ingest (validate, download, prepare, plan units) → produce
`datasets`, `failures`, `progress`. Undecodable records go to `dead-letters`."""

from __future__ import annotations

import asyncio
import logging

import faust

from ingestion.ingest import fetcher, ingest_safely
from ingestion.intake import read_request
from schemas import DecodeError, encode
from schemas.topics import CONFIGS, DATASETS, FAILURES, PROGRESS
from timex_stream.faust_app import create_app, decoded, raw_topic, run_worker, send_record
from timex_stream.logs import request_id_var
from timex_stream.records import failure
from timex_stream.settings import Settings

log = logging.getLogger("ingestion")
settings = Settings.from_env()
app = create_app("ingestion", settings)
metrics = app.timex_metrics  # type: ignore[attr-defined]
configs, datasets = raw_topic(app, CONFIGS), raw_topic(app, DATASETS)
failures, progress = raw_topic(app, FAILURES), raw_topic(app, PROGRESS)
topics = {t.get_topic_name(): t for t in (datasets, failures, progress)}
fetch = fetcher(settings)


@app.agent(configs)
async def ingest_configs(stream: faust.StreamT) -> None:
    async for _event, request in decoded(app, stream, CONFIGS, decode=lambda e: read_request(e.key, e.value),
                                         on_poison=tell_sender):
        rid = request["request_id"]
        request_id_var.set(rid)
        with metrics.seconds.time():
            # Download and CSV parsing block: off the event loop, in a thread.
            outcome = await asyncio.get_running_loop().run_in_executor(None, ingest_safely, request, fetch,
                                                                         settings.limits)
        for topic, key, record in outcome.records():
            await send_record(topics[topic.name], key, record)
        for record in outcome.failures:
            metrics.failures.labels(record["stage"]).inc()
        metrics.produced.labels(DATASETS.name).inc(len(outcome.datasets))
        log.info("ingested: %d units, %d failures", len(outcome.datasets), len(outcome.failures))


async def tell_sender(event: faust.EventT, exc: DecodeError) -> None:
    """A record on `configs` that is no config: if the sender named a request id (the key), answer it."""
    if event.key:
        rid = event.key.decode("utf-8", "replace")
        await failures.send(key=event.key, value=encode("Failure", failure(
            rid, "decode", f"the record on 'configs' is not a TIMEX config: {exc}", fatal=True)))


def main(s: Settings) -> int:
    return run_worker(app, "ingestion", s)
