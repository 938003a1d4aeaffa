"""The ingestion service (a confluent-kafka consumer, no Faust app): importing the module builds nothing, and
building the service touches no broker. Its flow runs end to end in tests/flow (fast lane, kill -9, configs
delivered again) and tests/faults."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

from schemas.wiring import INGESTION
from timex_stream.runtime.settings import Settings


def test_the_service_module_imports_and_builds_the_service_without_a_broker(tmp_path: Path) -> None:
    service = importlib.import_module("ingestion.service")
    assert not hasattr(service, "app") and not hasattr(service, "service")  # nothing built at import
    # No broker listens on port 1: building the service must not connect to it.
    settings = dataclasses.replace(Settings(), bootstrap_servers="127.0.0.1:1", data_dir=tmp_path)
    ingestion = service.Ingestion(settings)
    assert ingestion.intake.in_order.in_hand() == 0 and ingestion.intake.assigned == []
    assert INGESTION.group == "timex-ingestion" and not INGESTION.faust
    assert INGESTION.internal == {"timex-ingestion-answered-changelog"}  # no Faust leader topic
    # It uses Kafka as declared (the ACLs are made from the declaration; its sender refuses any other topic).
    assert (ingestion.intake.group, (ingestion.intake.topic,)) == (INGESTION.group, INGESTION.subscribes)
    assert ingestion.table.topic in INGESTION.internal
