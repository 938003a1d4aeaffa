"""`kafka_cluster`: a local 3-broker KRaft cluster (`EmbeddedCluster`, free ports, temp data dirs) with the
catalogue topics, for the modules that test replication and broker faults. Module-scoped: three JVMs cost
memory and CPU, so they run only while such a module does; the suite's one-broker `kafka_bootstrap` stays
the default. A plugin (tests/conftest.py `pytest_plugins`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from timex_stream.runtime.kafka import ensure_topics
from timex_stream.runtime.settings import Settings
from timex_stream.tools.broker import EmbeddedCluster

CLUSTER_BROKERS = 3


@pytest.fixture(scope="module")
def kafka_cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(Settings.from_env().cache_dir, CLUSTER_BROKERS) as cluster:
        ensure_topics(cluster.bootstrap_servers)
        yield cluster
