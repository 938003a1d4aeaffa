"""One session-scoped real Kafka broker for the whole suite.

Which broker: KAFKA_BOOTSTRAP_SERVERS if set; else a testcontainers Kafka with `--testcontainers` (or
TIMEX_TESTCONTAINERS=1) where a Docker engine exists; else the embedded KRaft broker from Maven jars.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from timex_stream.runtime.kafka import ensure_topics
from timex_stream.runtime.settings import Settings

# Fixtures more than one test package uses, shared as plugins (not imported from a conftest).
pytest_plugins = [
    "tests.plugins.waiting", "tests.plugins.frames", "tests.plugins.core_series", "tests.plugins.samples",
    "tests.plugins.flows", "tests.plugins.cli", "tests.plugins.gateways", "tests.plugins.corpus_checks",
    "tests.plugins.ingestion_net", "tests.plugins.webapp_pages", "tests.plugins.cluster", "tests.plugins.pools",
    "tests.plugins.live_source",
]

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from timex_stream.tools.stack import Stack


def pytest_configure(config: pytest.Config) -> None:
    # Several stacks run at once here (xdist workers, each with its services, pools and broker): a worker
    # TIMEX_UNIT_NICE nicer than its service would yield to the *other* stacks' processes, and a unit under
    # the suite's load then outlasts the tests' 20 s stall timer (seen: one exponential-smoothing unit 28 s with
    # two busy processes beside it). The product's default is measured by bench/live.py; the pool's own test
    # checks the niceness.
    os.environ.setdefault("TIMEX_UNIT_NICE", "0")


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
    from timex_stream.tools.broker import EmbeddedKafka

    with EmbeddedKafka(Settings.from_env().cache_dir) as broker:
        ensure_topics(broker.bootstrap_servers)
        yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def csv_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 serving a temp folder: (base URL, folder). Tests drop CSVs in it."""
    import functools
    import http.server
    import threading

    root = tmp_path_factory.mktemp("csv")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


@pytest.fixture(scope="session")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """ingestion, predictor, validator and live as real processes on the session broker."""
    from timex_stream.tools.stack import Stack

    data_dir = tmp_path_factory.mktemp("stack")
    os.environ["TIMEX_URL_ALLOWLIST"] = "127.0.0.0/8"  # the tests' CSV server is on loopback
    # Lost units are asked for again within the tests' timeouts, but not before a killed service's partitions
    # have moved (10 s session timeout): the restart tests assert that nothing needed asking for again.
    os.environ["TIMEX_VALIDATOR_STALL_S"] = "20"
    # Decided markers are forgotten (tombstoned) after a grace window longer than the tests' stall horizon.
    os.environ["TIMEX_VALIDATOR_FORGET_S"] = "45"
    # The corpus' hostile servers (one that never answers, a slow drip) end in seconds, not minutes.
    os.environ.setdefault("TIMEX_DOWNLOAD_TIMEOUT_S", "5")
    # The shared stack's tests are about the predictors' path; tests/flow/test_fast_lane.py turns the fast lane on.
    os.environ.setdefault("TIMEX_FAST_LANE_MAX_WORK", "0")
    settings = dataclasses.replace(Settings.from_env(), bootstrap_servers=kafka_bootstrap, data_dir=data_dir)
    s = Stack(settings, only=["ingestion", "predictor", "validator", "live"])
    try:
        s.start()
        yield s
    finally:
        s.stop()
        for log in sorted((data_dir / "logs").glob("*.log")):  # shown by pytest when a test failed
            print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def producer_(kafka_bootstrap: str) -> Producer:
    from timex_stream.runtime.kafka import producer

    return producer(kafka_bootstrap)
