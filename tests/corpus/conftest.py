"""The corpus' set-up: the hostile server, a gateway process, and every Kafka-path case and poison record sent
at once (then followed together), so the corpus takes about as long as its slowest case."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Message

from schemas.topics import BY_NAME, CONFIGS, DEAD_LETTERS
from tests.corpus.cases import (
    FILES,
    KAFKA_CASES,
    POISON_CASES,
    Expect,
    Kafka,
    Poison,
    Urls,
)
from tests.corpus.hostile import hostile_server
from tests.corpus.poison import payload
from tests.plugins.corpus_checks import Sent, final, gateway_skipped, satisfied
from tests.plugins.gateways import Gateway
from timex_stream.runtime.intake import derived_request_id, position_of
from timex_stream.runtime.kafka import consumer, producer
from timex_stream.runtime.request_view import RequestView
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack

TIMEOUT = 300.0


@pytest.fixture(scope="module")
def urls() -> Iterator[Urls]:
    with hostile_server(FILES) as base:
        yield lambda name: f"{base}/{name}"


@pytest.fixture(scope="module")
def gateway(launch_gateway: Callable[..., Gateway]) -> Gateway:
    return launch_gateway("gateway-corpus")


@pytest.fixture(scope="module")
def sent(stack: Stack, urls: Urls, gateway: Gateway) -> Sent:
    out = Sent(skipped_before=gateway_skipped(gateway), processes={
        name: proc for name, proc in stack.children.items() if proc.poll() is None})
    run = uuid.uuid4().hex[:6]
    prod = producer(stack.bootstrap)
    t0 = time.monotonic()
    positions: dict[str, Message] = {}

    def remember(case_id: str) -> Callable[[object, Message], None]:
        return lambda err, msg: positions.__setitem__(case_id, msg)

    expects: dict[str, Expect] = {}
    for case in KAFKA_CASES:
        via = case.via
        assert isinstance(via, Kafka)
        built = via.config(urls)
        expects[case.id] = via.expect
        if isinstance(built, dict | str):
            out.rids[case.id] = submit(prod, built, csv=via.csv, origin="cli")
            continue
        key = f"{via.key}-{run}" if via.key else None  # unique per run: the topics may hold earlier runs
        prod.produce(CONFIGS.name, key=key.encode() if key else None, value=built, on_delivery=remember(case.id))
        if key:
            out.rids[case.id] = key
    for n, case in enumerate(POISON_CASES):
        via = case.via
        assert isinstance(via, Poison)
        key = f"poison-{run}-{n}"
        prod.produce(via.topic, key=key.encode() if via.keyed else None, value=payload(via.topic, via.payload, key),
                     on_delivery=remember(case.id))
        out.rids[case.id] = key
        expects[case.id] = via.expect
    assert prod.flush(30) == 0
    for case_id, msg in positions.items():
        assert msg.error() is None, (case_id, msg.error())
        if case_id.startswith("poison-"):
            out.placed[case_id] = (msg.topic(), msg.partition(), msg.offset())
        elif case_id not in out.rids:  # key-less plain JSON: the id the ingestion derives
            out.rids[case_id] = derived_request_id(position_of(msg))

    soft_deadline = time.monotonic() + TIMEOUT - 30  # then assert on what there is: each case says what is missing
    by_rid = {out.rids[c]: e for c, e in expects.items()}
    answered_at: dict[str, float] = {}

    def until(views: dict[str, RequestView]) -> bool:
        for r, e in by_rid.items():
            if r not in answered_at and (satisfied(e, views[r]) or final(e, views[r])):
                answered_at[r] = time.monotonic() - t0
        return len(answered_at) == len(by_rid) or time.monotonic() > soft_deadline

    out.views = follow(stack.bootstrap, list(by_rid), TIMEOUT, until=until)
    out.dead_letters = read_dead_letters(stack.bootstrap, set(out.placed.values()))
    out.seconds = time.monotonic() - t0
    print(f"\ncorpus: {len(KAFKA_CASES)} Kafka-path cases and {len(POISON_CASES)} poison records answered in "
          f"{out.seconds:.1f} s; the last ones: " + ", ".join(
              f"{case} {answered_at.get(out.rids[case], -1):.0f} s" for case in sorted(
                  expects, key=lambda c: answered_at.get(out.rids[c], 1e9), reverse=True)[:6]))
    return out


def read_dead_letters(bootstrap: str, wanted: set[tuple[str, int, int]], timeout: float = 60.0
                      ) -> dict[tuple[str, int, int], dict[str, str]]:
    """Headers of the dead letters that came from `wanted` (source topic, partition, offset)."""
    stream_topics = {w for w in wanted if BY_NAME[w[0]].name in ("configs", "datasets", "predictions")}
    found: dict[tuple[str, int, int], dict[str, str]] = {}
    cons = consumer(bootstrap, f"t-dead-{uuid.uuid4().hex[:8]}")
    cons.subscribe([DEAD_LETTERS.name])
    deadline = time.monotonic() + timeout
    try:
        while not stream_topics <= set(found) and time.monotonic() < deadline:
            msg = cons.poll(0.5)
            if msg is None or msg.error():
                continue
            headers = {k: v.decode("utf-8", "replace") for k, v in msg.headers() or []}
            where = (headers.get("source.topic", ""), int(headers.get("source.partition", -1)),
                     int(headers.get("source.offset", -1)))
            if where in wanted:
                found[where] = headers
    finally:
        cons.close()
    return found
