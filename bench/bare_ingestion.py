"""The ingestion's work for a trivial request without Faust: `python bench/bare_ingestion.py [--requests 600]`.

A floor for issue 22's CPU per request, not a product: a plain confluent-kafka loop in a process of its own
consumes `configs` and does what the ingestion's agent does for a trivial request (`ingest_inline`, the fast
lane's pool run and decision in `InPlace.answer`, `fan_out.publish` through the CLI's `ProducerSender`, one flush
and an offset commit a config), without the ingestion's table of answered requests. The bench's process submits
the trivial request of bench/latency.py one at a time after `--warm` unmeasured ones, and prints the loop's CPU
per request, its pool worker's and the broker's, beside the wall time: compare its loop figure with the
`ingestion` row of bench/request_cost.py (the same requests through Faust) to see what the runtime costs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import psutil
from latency import trivial_csv, via_topic
from scale_common import AnswerClock, print_table, quantile_ms, save

from ingestion.in_place import InPlace
from ingestion.ingest import ingest_inline
from schemas.topics import CONFIGS
from timex_stream.runtime.fan_out import ProducerSender, publish
from timex_stream.runtime.intake import Position, read_request
from timex_stream.runtime.kafka import consumer, ensure_topics, producer
from timex_stream.runtime.request_index import index_record
from timex_stream.runtime.settings import Settings
from timex_stream.tools.broker.embedded import EmbeddedKafka


async def loop(bootstrap: str) -> None:
    """The bare ingestion: until killed."""
    settings = dataclasses.replace(Settings.from_env(), bootstrap_servers=bootstrap)
    in_place = InPlace(settings)
    await in_place.pool.start()
    # The Faust producer's linger, as the ingestion's.
    sender = ProducerSender(producer(bootstrap, **{"linger.ms": 1}))
    cons = consumer(bootstrap, "bench-bare-ingestion")
    cons.subscribe([CONFIGS.name])
    print("ready", flush=True)
    while True:
        msg = cons.poll(0.05)
        if msg is None or msg.error():
            await asyncio.sleep(0)
            continue
        at = Position(msg.partition(), msg.offset(), msg.timestamp()[1])
        request = read_request(msg.key(), msg.value(), at)
        out = ingest_inline(request, settings.limits, None, settings.fast_lane_max_work)
        assert out is not None, "a trivial request is ingested inline"
        await publish(sender, index_record(request["request_id"], at, request), out, in_place.answer)
        sender.flush()
        cons.commit(message=msg, asynchronous=True)


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def measure(requests: int, warm: int) -> dict[str, float]:
    with EmbeddedKafka(Settings.from_env().cache_dir) as kafka:
        bootstrap = kafka.bootstrap_servers
        ensure_topics(bootstrap)
        child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", bootstrap],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            clock = AnswerClock(bootstrap)  # once the loop has subscribed: the topics' leaders are known by then
            try:
                csv = trivial_csv()
                via_topic(bootstrap, clock, csv, warm)
                proc, broker = psutil.Process(child.pid), psutil.Process(kafka.proc.pid)  # type: ignore[union-attr]

                def cpu() -> tuple[float, float, float]:
                    return (_cpu(proc), sum(_cpu(c) for c in proc.children(recursive=True)), _cpu(broker))

                before, t0 = cpu(), time.monotonic()
                seconds, _ = via_topic(bootstrap, clock, csv, requests)
                wall, after = time.monotonic() - t0, cpu()
            finally:
                clock.close()
        finally:
            child.kill()
            child.wait()
    per = [round(1000 * (a - b) / requests, 2) for a, b in zip(after, before, strict=True)]
    return {"requests": requests, "warm": warm, "ms_per_request": round(1000 * wall / requests, 1),
            "p50_ms": quantile_ms(seconds, 0.5), "loop_cpu_ms": per[0],
            "worker_cpu_ms": per[1], "broker_cpu_ms": per[2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--warm", type=int, default=300, help="requests sent first, not measured")
    # The bare ingestion's process (not `--loop`: importing Faust reads that from the command line).
    parser.add_argument("--serve", metavar="BOOTSTRAP", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(loop(args.serve))
        return
    out = measure(args.requests, args.warm)
    print_table("a trivial request through a bare confluent-kafka ingestion loop (CPU ms per request)", [out])
    save("bare_ingestion", out)


if __name__ == "__main__":
    main()
