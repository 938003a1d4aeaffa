"""The bounds of silent_broker.py on the services' aiokafka clients: a listener that accepts connections and answers
nothing (what a paused or cut-off broker looks like from a client) costs a producer seconds, not Faust's 20-minute
request timeout, and the aiokafka they were written for is the one installed. (The paused broker of a 3-broker
cluster under load: tests/faults/test_cluster_faults.py.)"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import aiokafka.client
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.conn import collect_hosts

from timex_stream.runtime import silent_broker
from timex_stream.runtime.faust_app import TimexApp
from timex_stream.runtime.kafka import create_missing
from timex_stream.runtime.silent_broker import ANSWER_S, WRITTEN_FOR, bound_producer, check_aiokafka_version

ROOT = Path(__file__).resolve().parents[3]
FAUST_PRODUCER_TIMEOUT_MS = 1_200_000  # what Faust gives its producer (producer_request_timeout: 20 minutes)


def test_the_installed_and_pinned_aiokafka_are_the_one_the_bounds_were_written_for() -> None:
    pinned = re.findall(r"^aiokafka==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert pinned == [WRITTEN_FOR], "constraints.txt pins another aiokafka"
    assert version("aiokafka") == WRITTEN_FOR
    check_aiokafka_version()


def test_another_aiokafka_version_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError) as raised:
        check_aiokafka_version("0.15.0")
    message = str(raised.value)
    assert "aiokafka 0.15.0 is installed" in message and f"written for {WRITTEN_FOR}" in message
    assert "#632" in message and "test_cluster_faults.py" in message
    monkeypatch.setattr(silent_broker, "version", lambda _dist: "0.15.0")
    with pytest.raises(RuntimeError, match="aiokafka 0.15.0 is installed"):
        TimexApp("timex-version-check")  # the services' app refuses before it builds anything


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """host:port of a socket that accepts connections (the kernel does, for a paused process too) and never
    answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_a_producer_asks_past_a_silent_broker_in_seconds(kafka_bootstrap: str, silent_listener: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed first, the silent one holds the producer ANSWER_S (its connect's version lookup times out), then
    the real broker answers and the record is acknowledged; with Faust's own timeout the producer was still
    waiting on the silent one after twice that."""
    # aiokafka shuffles the bootstrap servers on each bootstrap: asked first, the real broker would answer at once
    monkeypatch.setattr(aiokafka.client, "collect_hosts", lambda hosts: collect_hosts(hosts, randomize=False))
    topic = "test-silent-broker"  # not a catalogue topic: no reader of the suite sees the record
    create_missing(kafka_bootstrap, {topic: (1, {})})

    async def start(bounded: bool) -> float:
        prod = AIOKafkaProducer(bootstrap_servers=f"{silent_listener},{kafka_bootstrap}", acks="all",
                                enable_idempotence=True, request_timeout_ms=FAUST_PRODUCER_TIMEOUT_MS)
        if bounded:
            bound_producer(prod.client)
        began = time.monotonic()
        try:
            await asyncio.wait_for(prod.start(), 2 * ANSWER_S + 10)
            took = time.monotonic() - began
            meta = await asyncio.wait_for(await prod.send(topic, b"silent-broker-check"), 30)
            assert meta.offset >= 0
            return took
        finally:
            await prod.stop()

    took = asyncio.run(start(bounded=True))
    assert ANSWER_S - 0.5 <= took < 2 * ANSWER_S + 5, f"started in {took:.1f} s"

    async def unbounded() -> None:
        prod = AIOKafkaProducer(bootstrap_servers=f"{silent_listener},{kafka_bootstrap}",
                                request_timeout_ms=FAUST_PRODUCER_TIMEOUT_MS)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(prod.start(), 2 * ANSWER_S)
        finally:
            await prod.stop()

    asyncio.run(unbounded())
