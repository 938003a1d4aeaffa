"""A minimal Faust service built like the validator (create_app + decoded + a changelog-backed table):
copies each record's key from $RELAY_IN to $RELAY_OUT after a short await, so that a stop often lands
mid-batch, and counts it in a table, so that a restart recovers a changelog first. Run as a script."""

from __future__ import annotations

import asyncio
import os

import faust

from schemas.topics import Topic
from timex_stream.faust_app import create_app, decoded, raw_topic, run_worker
from timex_stream.settings import Settings

source = Topic(os.environ["RELAY_IN"], 4, "record id", None, 3_600_000, "relay input")
sink = Topic(os.environ["RELAY_OUT"], 1, "record id", None, 3_600_000, "relay output")
settings = Settings.from_env()
app = create_app(os.environ["RELAY_IN"], settings)
inputs, outputs = raw_topic(app, source), raw_topic(app, sink)
counts = app.Table("counts", key_type=str, partitions=source.partitions)


@app.agent(inputs)
async def relay(stream: faust.StreamT) -> None:
    async for event, _record in decoded(app, stream, source, decode=lambda e: {}):
        await asyncio.sleep(0.002)
        await outputs.send(key=event.key, value=b"")
        counts[event.key.decode()] = counts.get(event.key.decode(), 0) + 1


if __name__ == "__main__":
    run_worker(app, "relay", settings)
