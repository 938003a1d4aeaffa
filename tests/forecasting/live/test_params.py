"""Live request settings: defaults, each field checked with an error that names it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forecasting.config import ConfigError
from forecasting.live.params import DEFAULT_WINDOW_POINTS, LiveParameters, live_request
from tests.plugins.core_series import make_config


def request(**input_parameters: Any):  # noqa: ANN201
    return live_request(make_config(input_parameters=input_parameters))


def test_an_ordinary_request_is_not_live() -> None:
    assert request() is None


def test_defaults() -> None:
    got = request(source_topic="shop-sales")
    assert got is not None and got.source_topic == "shop-sales"
    assert got.live == LiveParameters(start_from="earliest", min_points=50, allowed_lateness=0,
                                      window_points=DEFAULT_WINDOW_POINTS, record_format="auto", accuracy_window=50,
                                      reselect_factor=1.5, reselect_patience=10, reselect_every=0)


def test_given_values() -> None:
    got = request(source_topic="s", live_parameters={"start_from": "2026-01-01T02:00:00+02:00", "min_points": 20,
                                                      "allowed_lateness": "90min", "window_points": 500,
                                                      "record_format": "long", "accuracy_window": 30,
                                                      "reselect_factor": 2, "reselect_patience": 4,
                                                      "reselect_every": 100})
    assert got is not None
    assert got.live.start_from == "2026-01-01T00:00:00"
    assert got.live.lateness_points("h") == 2 and got.live.lateness_points("15min") == 6
    assert got.live.window_points == 500 and got.live.record_format == "long"
    assert (got.live.accuracy_window, got.live.reselect_factor, got.live.reselect_patience,
            got.live.reselect_every) == (30, 2.0, 4, 100)
    assert request(source_topic="s", live_parameters={"start_from": "LATEST"}).live.start_from == "latest"


@pytest.mark.parametrize("inputs, field, words", [
    ({"source_topic": "bad topic"}, "input_parameters.source_topic", "not a Kafka topic name"),
    ({"source_topic": ".."}, "input_parameters.source_topic", "not a Kafka topic name"),
    ({"source_topic": 7}, "input_parameters.source_topic", "not a Kafka topic name"),
    ({"live_parameters": {}}, "input_parameters.live_parameters", "without input_parameters.source_topic"),
    ({"source_topic": "s", "live_parameters": []}, "input_parameters.live_parameters", "expected an object"),
    ({"source_topic": "s", "live_parameters": {"start_from": "soon"}},
     "input_parameters.live_parameters.start_from", "earliest, latest or an ISO timestamp"),
    ({"source_topic": "s", "live_parameters": {"min_points": 1}},
     "input_parameters.live_parameters.min_points", "greater than or equal to 2"),
    ({"source_topic": "s", "live_parameters": {"allowed_lateness": -1}},
     "input_parameters.live_parameters.allowed_lateness", "0 or more"),
    ({"source_topic": "s", "live_parameters": {"allowed_lateness": "a while"}},
     "input_parameters.live_parameters.allowed_lateness", "neither a number of points nor a duration"),
    ({"source_topic": "s", "live_parameters": {"min_points": 100, "window_points": 50}},
     "input_parameters.live_parameters", "at least min_points"),
    ({"source_topic": "s", "live_parameters": {"record_format": "csv"}},
     "input_parameters.live_parameters.record_format", "auto"),
    ({"source_topic": "s", "live_parameters": {"min_point": 5}},
     "input_parameters.live_parameters.min_point", "Extra inputs are not permitted"),
    ({"source_topic": "s", "add_diff_column": "x"}, "input_parameters.add_diff_column", "not supported"),
    ({"source_topic": "s", "live_parameters": {"accuracy_window": 0}},
     "input_parameters.live_parameters.accuracy_window", "greater than or equal to 1"),
    ({"source_topic": "s", "live_parameters": {"accuracy_window": 1_000_001}},
     "input_parameters.live_parameters.accuracy_window", "forecasts to keep per series; at most 1,000,000"),
    ({"source_topic": "s", "live_parameters": {"reselect_factor": 0}},
     "input_parameters.live_parameters.reselect_factor", "greater than 0"),
    ({"source_topic": "s", "live_parameters": {"reselect_factor": "lots"}},
     "input_parameters.live_parameters.reselect_factor", "valid number"),
    ({"source_topic": "s", "live_parameters": {"reselect_patience": -1}},
     "input_parameters.live_parameters.reselect_patience", "greater than or equal to 0"),
    ({"source_topic": "s", "live_parameters": {"reselect_every": 10, "min_points": 20}},
     "input_parameters.live_parameters", "reselect_every (10) must be 0 (never) or at least min_points (20)"),
])
def test_errors_name_the_field(inputs: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        request(**inputs)
    assert [e.field for e in caught.value.errors] == [field], caught.value
    assert words in caught.value.errors[0].message


def test_a_duration_lateness_needs_a_fixed_length_frequency() -> None:
    got = request(source_topic="s", live_parameters={"allowed_lateness": "40D"})
    assert got is not None
    with pytest.raises(ConfigError, match="fixed-length"):
        got.live.lateness_points("MS")
    assert LiveParameters(allowed_lateness=3).lateness_points("MS") == 3


def test_a_live_config_parses_without_warnings_and_without_a_url() -> None:
    from forecasting.config import parse_config

    raw = {"input_parameters": {"source_topic": "shop-sales", "frequency": "D",
                                "live_parameters": {"min_points": 20}},
           "model_parameters": {"models": "naive", "possible_transformations": "none", "main_accuracy_estimator": "mae",
                                "delta_training_percentage": 20, "forecast_horizon": 3, "test_values": 3}}
    parsed = parse_config(raw)
    assert parsed.config.input_parameters.source_data_url is None
    assert not [w for w in parsed.warnings if "source_topic" in w or "live_parameters" in w], parsed.warnings
    assert live_request(parsed.config).live.min_points == 20  # type: ignore[union-attr]
    # the settings round-trip through the normalized JSON the services ship
    assert live_request(parse_config(parsed.config.to_json()).config).source_topic == "shop-sales"  # type: ignore


def test_the_ingestion_refuses_bad_live_settings_as_a_config_failure() -> None:
    from ingestion.ingest import ingest

    raw = {"input_parameters": {"source_topic": "shop-sales", "frequency": "D", "live_parameters": {"min_points": 1}},
           "model_parameters": {"models": "naive", "main_accuracy_estimator": "mae", "forecast_horizon": 3}}
    out = ingest({"request_id": "r1", "config_json": json.dumps(raw)}, fetch=lambda url: b"")
    (fatal,) = [f for f in out.failures if f["fatal"]]
    assert fatal["stage"] == "config" and "input_parameters.live_parameters.min_points" in fatal["message"]
    assert out.standing == []


def test_without_a_source_topic_the_url_is_still_required() -> None:
    from forecasting.config import parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"input_parameters": {"frequency": "D"},
                      "model_parameters": {"models": "naive", "main_accuracy_estimator": "mae", "forecast_horizon": 3}})
    assert {e.field: e.message for e in err.value.errors}["input_parameters.source_data_url"] == \
        "required field is missing"


@pytest.mark.parametrize("topic", ["configs", "best-models", "forecasts", "timex-validator-series-states-changelog"])
def test_the_services_own_topics_are_refused(topic: str) -> None:
    with pytest.raises(ConfigError) as err:
        request(source_topic=topic)
    assert "one of TIMEX Stream's own topics" in str(err.value)
