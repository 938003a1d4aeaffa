"""Replication follows the cluster's size, and every producer waits for all in-sync replicas and is idempotent
(the confluent-kafka ones and the aiokafka one Faust builds). The cluster side is in
tests/timex_stream/tools/test_cluster.py; here the one-broker session broker keeps today's replication."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from confluent_kafka.admin import ConfigResource, ConfigSource

from schemas import CATALOGUE
from timex_stream.runtime.faust_app import create_app
from timex_stream.runtime.kafka import admin, producer_config
from timex_stream.runtime.replication import Replication, cluster_replication, replication_for
from timex_stream.runtime.settings import Settings


def test_replication_for_the_cluster_size() -> None:
    assert replication_for(1) == Replication(1, 1)
    assert replication_for(2) == Replication(2, 1)
    assert replication_for(3) == replication_for(5) == Replication(3, 2)


def test_one_broker_keeps_one_replica_and_the_broker_default_min_isr(kafka_bootstrap: str) -> None:
    client = admin(kafka_bootstrap)
    if len(client.list_topics(timeout=10).brokers) != 1:  # KAFKA_BOOTSTRAP_SERVERS may be a cluster
        return
    assert cluster_replication(client) == Replication(1, 1)
    topics = client.list_topics(timeout=10).topics
    for t in CATALOGUE:
        assert {len(p.replicas) for p in topics[t.name].partitions.values()} == {1}, t.name
    res = ConfigResource(ConfigResource.Type.TOPIC, CATALOGUE[0].name)
    entry = client.describe_configs([res])[res].result()["min.insync.replicas"]
    assert entry.value == "1" and entry.source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value  # a broker default


def test_confluent_producers_wait_for_all_replicas_and_are_idempotent() -> None:
    conf = producer_config("127.0.0.1:1")
    assert conf["acks"] == "all" and conf["enable.idempotence"] is True
    assert conf["compression.type"] == "none"  # as the Faust producers: gzip cost its sender 1 ms a trivial config


def test_the_faust_producer_waits_for_all_replicas_and_is_idempotent(tmp_path: Path) -> None:
    settings = dataclasses.replace(Settings.from_env({}), bootstrap_servers="127.0.0.1:1", data_dir=tmp_path)
    app = create_app("predictor", settings)

    async def built() -> tuple[object, object]:  # the aiokafka producer Faust would start (nothing is dialled)
        client = app.producer._new_producer()
        return client._txn_manager, client._sender._acks

    txn_manager, acks = asyncio.run(built())
    assert txn_manager is not None, "aiokafka producer built without enable_idempotence"
    assert acks == -1
