"""The services use Kafka as `schemas.wiring` declares (what the ACLs are checked against): each Faust service's
app, built as its `main` builds it, has agents on exactly the topics it subscribes to and exactly its declared
tables, and opens a channel on every topic it declares it produces; the guards refuse what is not declared.
Every service module imports without a broker: a module that builds its app at import could not be imported
by these tests (nor by any other) without one.

Nothing here connects to Kafka: building an app or opening a channel does not (the bootstrap below is never
dialled); sending does, and the send guard refuses before it."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import faust
import pytest

from schemas.topics import CONFIGS, DATASETS, DEAD_LETTERS, PREDICTIONS
from schemas.wiring import WIRING
from timex_stream.runtime.faust_app import WiringError, check_wiring, create_app, raw_topic, send_record
from timex_stream.runtime.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SERVICE_MODULES = ("ingestion.service", "predictor.service", "validator.service", "gateway.service",
                   "webapp.service")
NOT_DIALLED = "127.0.0.1:9"  # discard port: nothing here connects


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return dataclasses.replace(Settings.from_env({}), bootstrap_servers=NOT_DIALLED, data_dir=tmp_path)


# Imports each module in turn and prints the error of each that fails (one interpreter: the imports are slow).
IMPORT_EACH = """
import importlib, json, sys, traceback
failed = {}
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except BaseException:
        failed[module] = traceback.format_exc(limit=3)
print(json.dumps(failed))
"""


@pytest.fixture(scope="module")
def import_failures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The service modules that fail to import in a fresh interpreter with no broker named (an app built at
    import raises "KAFKA_BOOTSTRAP_SERVERS is not set"), with their errors."""
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env |= {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            "TIMEX_DATA_DIR": str(tmp_path_factory.mktemp("data"))}
    done = subprocess.run([sys.executable, "-c", IMPORT_EACH, *SERVICE_MODULES], env=env, capture_output=True,
                          text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", SERVICE_MODULES)
def test_every_service_module_imports_without_a_broker(module: str, import_failures: dict[str, str]) -> None:
    assert module not in import_failures, import_failures.get(module)


@pytest.mark.parametrize("service", [name for name, w in WIRING.items() if w.faust])
def test_each_faust_service_uses_what_it_declares(service: str, settings: Settings) -> None:
    wiring = WIRING[service]
    app = importlib.import_module(f"{service}.service").build_app(settings)
    assert app.conf.id == wiring.group == f"timex-{service}"  # the group its ACLs name
    check_wiring(app)  # agents on exactly its subscriptions, exactly its tables (as run_worker checks at start)
    # Every produced topic is opened at build (dead letters when one comes): a declared topic the service
    # never uses would give its user rights it does not need.
    assert wiring.produced - {DEAD_LETTERS.name} <= app.timex_channels <= wiring.channels
    assert {t.name for t in app.tables.values()} == set(wiring.tables)
    changelogs = {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    assert changelogs <= wiring.internal


def test_an_undeclared_service_gets_no_app(settings: Settings) -> None:
    with pytest.raises(WiringError, match="no declaration"):
        create_app("reporter", settings)


def test_a_channel_on_an_undeclared_topic_is_refused(settings: Settings) -> None:
    app = create_app("predictor", settings)
    assert raw_topic(app, DATASETS).get_topic_name() == "datasets"
    with pytest.raises(WiringError, match="'configs'"):
        raw_topic(app, CONFIGS)
    assert app.timex_channels == {"datasets"}


def test_a_send_to_a_topic_only_consumed_is_refused(settings: Settings) -> None:
    app = create_app("predictor", settings)
    with pytest.raises(WiringError, match="sends to 'datasets'"):
        asyncio.run(send_record(raw_topic(app, DATASETS), "r/s/0", {}))


def _agent_on(app: faust.App, channel: faust.TopicT) -> None:
    @app.agent(channel)
    async def consume(stream: faust.StreamT) -> None:
        async for _ in stream:
            pass


def test_agents_or_tables_other_than_declared_stop_the_start(settings: Settings) -> None:
    app = create_app("predictor", settings)
    with pytest.raises(WiringError, match="agents on"):
        check_wiring(app)  # declared to consume datasets, consumes nothing
    _agent_on(app, raw_topic(app, DATASETS))
    check_wiring(app)
    app.Table("extra", key_type=str, partitions=PREDICTIONS.partitions)
    with pytest.raises(WiringError, match="tables"):
        check_wiring(app)


def test_an_agent_on_a_topic_only_produced_stops_the_start(settings: Settings) -> None:
    app = create_app("predictor", settings)
    _agent_on(app, raw_topic(app, DATASETS))
    _agent_on(app, raw_topic(app, PREDICTIONS))  # a channel it may open, to send to, not to consume
    with pytest.raises(WiringError, match="'predictions'"):
        check_wiring(app)
