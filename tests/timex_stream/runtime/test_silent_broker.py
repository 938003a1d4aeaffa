"""The bounds of silent_broker.py on the services' aiokafka clients: a listener that accepts connections and answers
nothing (what a paused or cut-off broker looks like from a client) costs a producer seconds, not Faust's 20-minute
request timeout, and the aiokafka they were written for is the one installed. (The paused broker of a 3-broker
cluster under load: tests/faults/test_cluster_faults.py.)"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections import defaultdict
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import aiokafka.client
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.conn import collect_hosts
from aiokafka.errors import KafkaConnectionError

from timex_stream.runtime import silent_broker
from timex_stream.runtime.faust_app import TimexApp
from timex_stream.runtime.kafka import create_missing
from timex_stream.runtime.silent_broker import (
    ANSWER_S,
    WRITTEN_FOR,
    bound_consumer,
    bound_producer,
    check_aiokafka_version,
)

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


# --- the guard's decisions, on a stand-in client (the paused broker of a real cluster: test_cluster_faults.py) ----

class _Request:
    def __init__(self, api: int) -> None:
        self.API_KEY = api


class _Conn:
    """What the guard uses of an AIOKafkaConnection: `send` → an awaitable bounded by `_request_timeout` (as
    aiokafka's), `close` failing what waits on it."""

    def __init__(self) -> None:
        self._request_timeout = 99.0
        self.pending: list[asyncio.Future] = []

    def send(self, request: _Request, expect_response: bool = True) -> object:
        fut = asyncio.get_running_loop().create_future()
        self.pending.append(fut)
        return asyncio.wait_for(fut, self._request_timeout)

    def close(self, reason: object = None, exc: BaseException | None = None) -> None:
        for fut in self.pending:
            if not fut.done():
                fut.set_exception(KafkaConnectionError("closed"))


class _Cluster:
    def __init__(self, nodes: set[int]) -> None:
        self.nodes = nodes

    def brokers(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(nodeId=n) for n in sorted(self.nodes)]

    def broker_metadata(self, node_id: int) -> SimpleNamespace | None:
        return SimpleNamespace(host="127.0.0.1", port=40000 + node_id) if node_id in self.nodes else None


class _Client:
    """An AIOKafkaClient as far as the guard goes: its metadata asks each broker through `_get_conn` in turn."""

    def __init__(self, nodes: set[int]) -> None:
        self.cluster, self.conns, self.asked = _Cluster(nodes), {}, []
        self._request_timeout_ms = FAUST_PRODUCER_TIMEOUT_MS
        self._conns: dict = {}

    async def _get_conn(self, node_id: int, group: int = 0) -> _Conn:
        return self.conns.setdefault((node_id, group), _Conn())

    async def _metadata_update(self, cluster: _Cluster, topics: object) -> bool:
        for node_id in sorted(self.cluster.nodes):
            if await self._get_conn(node_id) is not None:  # the guard's, once bound
                self.asked.append(node_id)
                return True
        return False

    def force_metadata_update(self) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(True)
        return fut


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard's seconds, tenfold shorter; no broker marked silent by an earlier test."""
    for name in ("ANSWER_S", "HELD_CHECK_S", "WATCH_S", "SILENT_S", "QUIET_S"):
        monkeypatch.setattr(silent_broker, name, getattr(silent_broker, name) / 10)
    monkeypatch.setattr(silent_broker, "_silent_until", {})
    monkeypatch.setattr(silent_broker, "_heard", defaultdict(silent_broker._Heard))


def test_a_produce_held_by_a_listed_broker_waits_and_one_to_a_fenced_broker_goes_again_at_once(quick: None) -> None:
    """A healthy leader holds an acks=all produce until a silent follower is fenced: past ANSWER_S it is not
    given up (that took the healthy broker for a silent one); the produce to the broker that the controller
    fenced fails with a retriable error within WATCH_S of the fencing, not after its bound, and that broker is
    not asked again."""
    async def run() -> None:
        client = _Client({1, 2, 3})
        bound_producer(client)
        healthy, silent = await client._get_conn(1), await client._get_conn(2)
        held = asyncio.ensure_future(healthy.send(_Request(silent_broker.PRODUCE)))
        lost = asyncio.ensure_future(silent.send(_Request(silent_broker.PRODUCE)))
        await asyncio.sleep(2 * silent_broker.ANSWER_S)
        assert not held.done() and not lost.done(), "a held produce was given up after ANSWER_S"
        client.cluster.nodes.discard(2)  # the controller fenced broker 2
        fenced_at = time.monotonic()
        with pytest.raises(KafkaConnectionError):
            await lost
        assert time.monotonic() - fenced_at < 3 * silent_broker.WATCH_S
        assert not held.done()
        client.conns[(1, 0)].pending[0].set_result("acknowledged")  # the ISR shrank: the leader answers
        assert await held == "acknowledged"
        client.cluster.nodes.add(2)  # listed again (resumed), but it was silent: left alone SILENT_S
        assert await client._get_conn(2) is None

    asyncio.run(run())


def test_a_request_that_is_not_held_times_out_after_answer_s(quick: None) -> None:
    async def run() -> None:
        client = _Client({1, 2})
        bound_consumer(client)
        conn = await client._get_conn(1)
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            await conn.send(_Request(10))  # a coordinator lookup
        assert silent_broker.ANSWER_S <= time.monotonic() - began < silent_broker.ANSWER_S + 1
        assert await client._get_conn(1) is None  # left alone SILENT_S

    asyncio.run(run())


def test_metadata_goes_on_its_own_connection_and_not_to_a_quiet_broker(quick: None) -> None:
    """Metadata asked on the default connection queued behind a fetch or a held produce; asked of a silent broker,
    it cost ANSWER_S before the next was asked."""
    async def run() -> None:
        client = _Client({1, 2})
        bound_consumer(client)
        quiet = await client._get_conn(1)
        asking = asyncio.ensure_future(quiet.send(_Request(silent_broker.PRODUCE)))  # unanswered from now on
        await asyncio.sleep(2 * silent_broker.QUIET_S)
        assert await client._metadata_update(client.cluster, set())
        assert client.asked == [2]  # not broker 1, asked and silent for QUIET_S
        assert (2, silent_broker.METADATA_GROUP) in client.conns and (2, 0) not in client.conns
        asking.cancel()

    asyncio.run(run())
