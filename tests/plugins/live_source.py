"""A live request's source topic for the gateway, web app and CLI tests: `live_source` makes a fresh topic,
`produce_days` puts daily points on it (wide JSON rows), `live_config` is a standing request on it. A plugin
(tests/conftest.py `pytest_plugins`)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from timex_stream.runtime.kafka import admin

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
