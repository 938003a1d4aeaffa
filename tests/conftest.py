"""One session-scoped real Kafka broker for the whole suite.

Which broker: KAFKA_BOOTSTRAP_SERVERS if set; else a testcontainers Kafka with `--testcontainers` (or
TIMEX_TESTCONTAINERS=1) where a Docker engine exists; else the embedded KRaft broker from Maven jars.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from timex_stream.kafka import ensure_topics
from timex_stream.settings import Settings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--testcontainers", action="store_true",
                     help="run Kafka in a testcontainers container (needs a Docker engine)")


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        ensure_topics(external)
        yield external
        return
    if request.config.getoption("--testcontainers") or os.environ.get("TIMEX_TESTCONTAINERS") == "1":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.3.1").with_kraft() as container:
            bootstrap = container.get_bootstrap_server()
            ensure_topics(bootstrap)
            yield bootstrap
        return
    from timex_stream.broker import EmbeddedKafka

    with EmbeddedKafka(Settings.from_env().cache_dir) as broker:
        ensure_topics(broker.bootstrap_servers)
        yield broker.bootstrap_servers
