"""A minimal Faust service built like ours (create_app + decoded): copies each record's key from $RELAY_IN
to $RELAY_OUT after a short await, so that a stop often lands mid-batch. Like the validator (the default),
it counts each record in a changelog-backed table, so that a restart recovers a changelog first; like the
predictor ($RELAY_CONCURRENCY > 1, no table), it works on several records at once, and every
$RELAY_SLOW_EVERY-th one takes 3 s, so that later records finish first. Run as a script."""

from __future__ import annotations

import asyncio
import os

import faust

from schemas.topics import DEAD_LETTERS, Topic
from schemas.wiring import Wiring
from timex_stream.runtime.faust_app import create_app, decoded, raw_topic, run_worker
from timex_stream.runtime.settings import Settings

source = Topic(os.environ["RELAY_IN"], 4, "record id", None, 3_600_000, "relay input")
sink = Topic(os.environ["RELAY_OUT"], 1, "record id", None, 3_600_000, "relay output")
concurrency = int(os.environ.get("RELAY_CONCURRENCY", "1"))
slow_every = int(os.environ.get("RELAY_SLOW_EVERY", "0"))
settings = Settings.from_env()
tables = ("counts",) if concurrency == 1 else ()
wiring = Wiring(source.name, subscribes=(source,), produces=(sink, DEAD_LETTERS), tables=tables)
app = create_app(source.name, settings, wiring=wiring)
inputs, outputs = raw_topic(app, source), raw_topic(app, sink)
counts = app.Table("counts", key_type=str, partitions=source.partitions) if tables else None


@app.agent(inputs, concurrency=concurrency)
async def relay(stream: faust.StreamT) -> None:
    async for event, _record in decoded(app, stream, source, decode=lambda e: {}):
        slow = slow_every and int(event.key) % slow_every == 0
        await asyncio.sleep(3 if slow else 0.002)
        await outputs.send(key=event.key, value=b"")
        if counts is not None:
            counts[event.key.decode()] = counts.get(event.key.decode(), 0) + 1


if __name__ == "__main__":
    run_worker(app, "relay", settings)
