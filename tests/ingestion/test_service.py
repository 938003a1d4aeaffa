"""The ingestion service builds its Faust app in a function: importing the module builds nothing, building
the app touches no broker, and the app consumes `configs` with one agent."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

from timex_stream.runtime.settings import Settings


def test_the_service_module_imports_and_builds_its_app_without_a_broker(tmp_path: Path) -> None:
    service = importlib.import_module("ingestion.service")
    assert not hasattr(service, "app")  # nothing built at import
    # No broker listens on port 1: building the app must not connect to it.
    settings = dataclasses.replace(Settings(), bootstrap_servers="127.0.0.1:1", data_dir=tmp_path)
    app = service.build_app(settings)
    assert app.conf.id == "timex-ingestion"
    assert [(agent.channel.get_topic_name(), agent.fun.__name__) for agent in app.agents.values()] == [
        ("configs", "ingest_configs")]
