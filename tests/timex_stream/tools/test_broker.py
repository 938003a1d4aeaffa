"""The embedded broker and the Kafka helpers, on the real session broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from schemas import CATALOGUE, decode_as
from schemas.topics import FAILURES
from tests.plugins.waiting import wait_until
from timex_stream.runtime.kafka import admin, consumer, ensure_topics, producer, send
from timex_stream.runtime.settings import Settings
from timex_stream.tools.broker import EmbeddedKafka
from timex_stream.tools.broker.embedded import Quorum


def test_catalogue_topics_exist_with_their_settings(kafka_bootstrap: str) -> None:
    client = admin(kafka_bootstrap)
    topics = client.list_topics(timeout=10).topics
    for t in CATALOGUE:
        assert t.name in topics
        assert len(topics[t.name].partitions) == t.partitions
    from confluent_kafka.admin import ConfigResource

    res = ConfigResource(ConfigResource.Type.TOPIC, "configs")
    conf = client.describe_configs([res])[res].result()
    assert conf["retention.ms"].value == str(CATALOGUE[0].retention_ms)


def test_ensure_topics_is_idempotent(kafka_bootstrap: str) -> None:
    assert ensure_topics(kafka_bootstrap) == []


def test_produce_and_consume_an_avro_record(kafka_bootstrap: str) -> None:
    rid = f"t-{uuid.uuid4()}"
    prod = producer(kafka_bootstrap)
    send(prod, FAILURES, rid, {"request_id": rid, "stage": "download", "message": "HTTP 404",
                               "occurred_at": int(time.time() * 1000)})
    assert prod.flush(10) == 0
    cons = consumer(kafka_bootstrap, f"test-{rid}")
    cons.subscribe([FAILURES.name])
    found = None
    deadline = time.monotonic() + 20
    while found is None and time.monotonic() < deadline:
        msg = cons.poll(0.5)
        if msg is None or msg.error():
            continue
        if msg.key() == rid.encode():
            found = decode_as("Failure", msg.value())
    cons.close()
    assert found is not None and found["message"] == "HTTP 404" and found["fatal"] is False


def _server_properties(broker: EmbeddedKafka) -> dict[str, str]:
    lines = broker._write_config().read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_the_broker_config_carries_its_cpu_settings(tmp_path: Path) -> None:
    """What cuts the broker's CPU a request (README, "What a trivial request costs"): serial GC and the client JIT,
    few threads; a lone controller writes no idle no-op records, a cluster's nodes still do (the default)."""
    lone = EmbeddedKafka(tmp_path, tmp_path / "lone", port=1, controller_port=2)
    lone.data_dir.mkdir()
    java = lone._java(tmp_path, "kafka.Kafka")
    assert {"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"} <= set(java) and not any("G1" in a for a in java)
    props = _server_properties(lone)
    assert (props["num.network.threads"], props["num.io.threads"]) == ("1", "2")
    assert props["metadata.max.idle.interval.ms"] == "0"
    node = EmbeddedKafka(tmp_path, tmp_path / "node", port=1, controller_port=2,
                         quorum=Quorum(1, "1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3", "c", 3))
    node.data_dir.mkdir()
    props = _server_properties(node)
    assert "metadata.max.idle.interval.ms" not in props and props["num.io.threads"] == "2"


def test_a_second_broker_starts_and_stops_cleanly(tmp_path: Path) -> None:
    broker = EmbeddedKafka(Settings.from_env().cache_dir)
    bootstrap = broker.start()
    pid = broker.proc.pid  # type: ignore[union-attr]
    assert len(admin(bootstrap).list_topics(timeout=10).brokers) == 1
    broker.stop()
    assert broker.proc is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not broker.data_dir.exists()


def test_jvm_dies_with_a_killed_parent(tmp_path: Path) -> None:
    """kill -9 of the Python process that owns the broker must not leave an orphan JVM."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from timex_stream.tools.broker import EmbeddedKafka
        b = EmbeddedKafka(Path({str(Settings.from_env().cache_dir)!r}), Path({str(tmp_path / 'k')!r}))
        b.start()
        print(b.proc.pid, flush=True)
        sys.stdin.read()
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    jvm_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
    os.kill(jvm_pid, 0)  # alive
    parent.send_signal(signal.SIGKILL)
    parent.wait()

    def gone() -> bool:
        try:
            os.kill(jvm_pid, 0)
        except ProcessLookupError:
            return True
        return _is_zombie(jvm_pid)

    try:
        wait_until(gone, 10, what="the broker JVM gone with its parent", interval=0.1)
    except TimeoutError:
        os.kill(jvm_pid, signal.SIGKILL)
        pytest.fail("the broker JVM outlived its parent")


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False
