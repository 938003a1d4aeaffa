"""A live request's source topic for the gateway, web app and CLI tests: `live_source` makes a fresh topic,
`produce_days` puts daily points on it (wide JSON rows), `live_config` is a standing request on it;
`core_revisions` is what the broker-free core revises from the same rows (the undisturbed run the fault tests
compare with). A plugin (tests/conftest.py `pytest_plugins`)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from forecasting.config import config_from_json
from forecasting.live.follow import Choice, LiveSeries, fit_live
from forecasting.live.observations import ObservationReader
from forecasting.live.params import live_request
from timex_stream.runtime.kafka import admin
from timex_stream.runtime.ports import free_port
from timex_stream.runtime.settings import Settings
from timex_stream.tools.stack import Stack

LIVE_MIN_POINTS = 20
LIVE_START = pd.Timestamp("2026-01-01")


def day_value(day: int) -> float:
    return 100.0 + (day % 7) * 3.0 + day * 0.5


def day_stamp(day: int) -> str:
    return (LIVE_START + pd.Timedelta(days=day)).isoformat()


def produce_days(producer: Producer, topic: str, days: range, value: Any = day_value) -> None:
    """One wide row per day: {"date": ..., "sales": value(day)}."""
    for day in days:
        row = {"date": (LIVE_START + pd.Timedelta(days=day)).strftime("%Y-%m-%d"), "sales": value(day)}
        producer.produce(topic, json.dumps(row).encode())
    assert producer.flush(30) == 0


def live_config(topic: str, **live: Any) -> dict[str, Any]:
    return {"activity_title": "live view test",
            "input_parameters": {"source_topic": topic, "index_column_name": "date", "frequency": "D",
                                 "live_parameters": {"min_points": LIVE_MIN_POINTS, **live}},
            "model_parameters": {"models": "naive,seasonal_naive", "possible_transformations": "none",
                                 "main_accuracy_estimator": "mae", "test_values": 3,
                                 "delta_training_percentage": 50, "prediction_lags": 4}}


@pytest.fixture
def live_source(kafka_bootstrap: str) -> str:
    """A new one-partition topic to be a standing request's source."""
    name = f"live-src-{uuid.uuid4().hex[:8]}"
    client = admin(kafka_bootstrap)  # held until the topic exists: a destroyed client fails its futures
    client.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    return name


def core_revisions(config: dict[str, Any], series: str, choice: Choice, row: Callable[[int], bytes], days: int,
                   at: list[int]) -> dict[int, dict[str, Any]]:
    """The undisturbed revisions of `series` over the rows `row(0)` … `row(days - 1)`, revised at each number in
    `at`: the broker-free core reading the same bytes as the service, with the same window and fit."""
    config_json = json.dumps(config)
    parsed = config_from_json(config_json)
    params = live_request(parsed)
    assert params is not None
    live = LiveSeries(series, parsed, params.live, parsed.input_parameters.frequency or "")
    reader = ObservationReader(parsed, "auto")
    wanted, out = sorted(at), {}
    for day in range(days):
        for obs in reader.read(None, row(day)):
            if obs.series == series and live.add(obs)[1]:
                assert live.snapshot is not None
                live.start(choice, fit_live(config_json, live.snapshot, choice))
        if wanted and live.window.included == wanted[0]:
            fields = live.revise()
            assert fields is not None, f"no revision {wanted[0]} from the core"
            out[wanted.pop(0)] = fields
    assert not wanted, f"revisions {wanted} never reached by the core"
    return out


@contextmanager
def own_live_stack(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Stack]:
    """A broker of its own (free ports) with ingestion, predictor, validator and live, the service processes
    inheriting `env`: for a module whose restarts or limits must not meet the session's standing requests. The
    services' log tails are printed at the end (pytest shows them when a test failed)."""
    settings = dataclasses.replace(Settings.from_env(), bootstrap_servers=None, data_dir=data_dir,
                                   kafka_port=free_port(), kafka_controller_port=free_port())
    stack = Stack(settings, only=["ingestion", "predictor", "validator", "live"])
    with pytest.MonkeyPatch.context() as patch:  # what the service processes inherit
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
            for log in sorted((data_dir / "logs").glob("*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")
