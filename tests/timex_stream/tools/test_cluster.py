"""The local 3-broker cluster (`EmbeddedCluster`): every broker registered, the catalogue and the internal topics
replicated 3 times with min.insync.replicas 2, and a node killed, started again or paused and resumed comes
back into the ISR while writes go on."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import ConfigResource

from schemas import CATALOGUE
from schemas.topics import FAILURES
from tests.plugins.waiting import wait_until
from timex_stream.runtime.kafka import admin, consumer, ensure_topics, producer, send
from timex_stream.runtime.ports import free_port
from timex_stream.runtime.settings import Settings
from timex_stream.tools.broker import EmbeddedCluster
from timex_stream.tools.broker.cluster import cluster_ports
from timex_stream.tools.cli import build_parser
from timex_stream.tools.stack import Stack, fixed_ports, taken_ports


def _isr(cluster: EmbeddedCluster, topic: str) -> dict[int, set[int]]:
    meta = admin(cluster.bootstrap_servers).list_topics(topic, timeout=10).topics[topic]
    return {p.id: set(p.isrs) for p in meta.partitions.values()}


def _write_one(bootstrap: str) -> None:
    rid = f"t-{uuid.uuid4()}"
    prod = producer(bootstrap)
    send(prod, FAILURES, rid, {"request_id": rid, "stage": "download", "message": "x", "occurred_at": 0})
    assert prod.flush(30) == 0


def test_every_broker_is_registered_and_the_catalogue_is_replicated(kafka_cluster: EmbeddedCluster) -> None:
    client = admin(kafka_cluster.bootstrap_servers)
    meta = client.list_topics(timeout=10)
    assert sorted(meta.brokers) == [1, 2, 3]
    assert len(kafka_cluster.bootstrap_servers.split(",")) == 3
    for t in CATALOGUE:
        assert {len(p.replicas) for p in meta.topics[t.name].partitions.values()} == {3}, t.name
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t.name) for t in CATALOGUE]
    for res, fut in client.describe_configs(resources).items():
        assert fut.result()["min.insync.replicas"].value == "2", res.name


def test_consumer_offsets_and_transactions_are_replicated(kafka_cluster: EmbeddedCluster) -> None:
    _write_one(kafka_cluster.bootstrap_servers)
    cons = consumer(kafka_cluster.bootstrap_servers, f"test-{uuid.uuid4()}")
    cons.subscribe([FAILURES.name])
    wait_until(lambda: cons.poll(0.5) is not None, 30, what="a record polled")
    cons.commit(asynchronous=False)
    cons.close()
    topics = admin(kafka_cluster.bootstrap_servers).list_topics(timeout=10).topics
    assert {len(p.replicas) for p in topics["__consumer_offsets"].partitions.values()} == {3}
    client = admin(kafka_cluster.bootstrap_servers)
    res = ConfigResource(ConfigResource.Type.BROKER, "1")
    conf = client.describe_configs([res])[res].result()
    assert conf["transaction.state.log.replication.factor"].value == "3"
    assert conf["min.insync.replicas"].value == "2"


def test_a_killed_broker_restarts_on_its_data_and_rejoins_the_isr(kafka_cluster: EmbeddedCluster) -> None:
    node = kafka_cluster.node(2)
    pid = node.proc.pid  # type: ignore[union-attr]
    node.kill()
    wait_until(lambda: all(2 not in isr for isr in _isr(kafka_cluster, "configs").values()), 30,
               what="broker 2 out of the ISR")
    _write_one(kafka_cluster.bootstrap_servers)  # 2 of 3 in sync: min.insync.replicas 2 still holds
    node.start()
    assert node.proc.pid != pid  # type: ignore[union-attr]
    kafka_cluster.wait_registered(3)
    wait_until(lambda: all(isr == {1, 2, 3} for isr in _isr(kafka_cluster, "configs").values()), 60,
               what="broker 2 back in every ISR of configs")


def test_a_paused_broker_drops_out_and_comes_back(kafka_cluster: EmbeddedCluster) -> None:
    node = kafka_cluster.node(3)
    node.pause()
    try:
        wait_until(lambda: 3 not in admin(kafka_cluster.bootstrap_servers.split(",")[0]).list_topics(
            timeout=10).brokers, 45, what="broker 3 fenced while stopped")
        _write_one(kafka_cluster.bootstrap_servers)  # the other two take the writes (within the flush's 30 s)
    finally:
        node.resume()
    kafka_cluster.wait_registered(3)
    wait_until(lambda: all(isr == {1, 2, 3} for isr in _isr(kafka_cluster, "configs").values()), 90,
               what="broker 3 back in every ISR of configs")


def test_cluster_ports_derive_from_the_settings_and_refuse_collisions() -> None:
    assert cluster_ports(9092, 9093, 3) == [(9092, 9093), (9094, 9095), (9096, 9097)]
    assert cluster_ports(9092, 9200, 2) == [(9092, 9200), (9094, 9202)]
    with pytest.raises(ValueError, match="collide"):
        cluster_ports(9092, 9094, 3)


def test_up_brokers_3_keeps_its_cluster_on_disk_on_fixed_ports(tmp_path: Path) -> None:
    """`timex-stream up --brokers 3`: the stack's cluster, stopped and started again on the same data dir
    (fixed ports: the static voters record them), still has its cluster and topics."""
    assert build_parser().parse_args(["up", "--brokers", "3"]).brokers == 3
    assert build_parser().parse_args(["up"]).brokers == 1
    for _ in range(50):  # a free port whose five derived ones are free too (a random one's often are not all)
        port = free_port()
        controller_port = port + 1  # the default layout (TIMEX_KAFKA_CONTROLLER_PORT = TIMEX_KAFKA_PORT + 1)
        settings = dataclasses.replace(Settings.from_env({}), bootstrap_servers=None, data_dir=tmp_path,
                                       kafka_port=port, kafka_controller_port=controller_port)
        if not taken_ports(fixed_ports(settings, [], brokers=3)):
            break
    else:
        pytest.fail("no free port with its five derived ports free in 50 tries")
    ports = [(p.port, p.variable) for p in fixed_ports(settings, [], brokers=3)]
    assert ports == [(port + 2 * i + d, var) for i in range(3)
                     for d, var in ((0, "TIMEX_KAFKA_PORT"), (controller_port - port, "TIMEX_KAFKA_CONTROLLER_PORT"))]
    first = Stack(settings, only=[], brokers=3)
    try:
        first.start()
        bootstrap = first.bootstrap
        assert bootstrap == ",".join(f"127.0.0.1:{port + 2 * i}" for i in range(3))
        assert sorted(admin(bootstrap).list_topics(timeout=10).brokers) == [1, 2, 3]
    finally:
        first.stop()
    assert (tmp_path / "kafka-3" / "node-3" / "kraft-logs" / "meta.properties").exists()
    again = Stack(settings, only=[], brokers=3)
    try:
        again.start()
        assert again.bootstrap == bootstrap
        assert ensure_topics(bootstrap) == []  # the catalogue survived the restart
        assert {len(p.replicas) for p in admin(bootstrap).list_topics(CATALOGUE[0].name, timeout=10)
                .topics[CATALOGUE[0].name].partitions.values()} == {3}
    finally:
        again.stop()
