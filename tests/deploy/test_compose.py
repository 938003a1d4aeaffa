"""docker-compose.yml: valid Compose, a single-node KRaft Kafka, the catalogue topics created before any
service starts, health checks and start order, published ports, two predictors."""

from __future__ import annotations

import inspect
import json
from typing import Any

import jsonschema

from schemas import CATALOGUE
from timex_stream.runtime.kafka import create_missing, ensure_topics


def test_compose_file_validates_against_the_compose_spec(compose: dict[str, Any], layout) -> None:
    spec = json.loads((layout.shared / "compose-spec" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(spec)
    validator = jsonschema.Draft7Validator(spec)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, errors


def test_the_spec_rejects_what_compose_would_reject(compose: dict[str, Any], layout) -> None:
    # Proves the validation above has teeth: a misspelt key fails.
    spec = json.loads((layout.shared / "compose-spec" / "compose-spec.json").read_text())
    kafka = {**compose["services"]["kafka"], "helthcheck": {}}
    broken = {**compose, "services": {**compose["services"], "kafka": kafka}}
    assert not jsonschema.Draft7Validator(spec).is_valid(broken)


def test_kafka_is_a_single_kraft_node(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"] == "apache/kafka:4.3.1"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert env[key] == "1", key
    # Only the catalogue (and Faust's own topics) may create topics.
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_topics_are_created_from_the_catalogue_before_the_services(compose: dict[str, Any], layout) -> None:
    services = compose["services"]
    topics = services["topics"]
    assert topics["image"].startswith(layout.image_prefix + "base:")
    assert topics["command"] == ["topics"]  # the base image's entrypoint is timex-stream
    assert topics["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    # `timex-stream topics` creates exactly the catalogue, with its partitions and configs.
    assert inspect.signature(ensure_topics).parameters["topics"].default is CATALOGUE
    assert "{t.name: (t.partitions, t.config) for t in topics}" in inspect.getsource(ensure_topics)
    assert "NewTopic(name, topics[name][0], replication_factor, config=topics[name][1])" in inspect.getsource(
        create_missing)
    for name in ("ingestion", "predictor", "validator", "gateway"):
        assert services[name]["depends_on"]["topics"] == {"condition": "service_completed_successfully"}, name
    assert services["webapp"]["depends_on"]["gateway"] == {"condition": "service_healthy"}


def test_every_long_running_service_has_a_health_check_on_its_port(compose: dict[str, Any], layout) -> None:
    ports = {"gateway": "TIMEX_GATEWAY_PORT", "webapp": "TIMEX_WEBAPP_PORT"}
    for name in layout.services:
        service = compose["services"][name]
        port = service["environment"][ports.get(name, "TIMEX_WEB_PORT")]
        test = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/health" in test, name
        assert service["restart"] == "unless-stopped", name


def test_gateway_and_webapp_are_published_and_predictor_runs_twice(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, var in (("gateway", "TIMEX_GATEWAY_PORT"), ("webapp", "TIMEX_WEBAPP_PORT")):
        port = services[name]["environment"][var]
        assert services[name]["ports"] == [f"127.0.0.1:{port}:{port}"], name  # loopback: no auth on these
    assert services["webapp"]["environment"]["TIMEX_GATEWAY_URL"] == "http://gateway:8000"
    assert services["predictor"]["deploy"]["replicas"] == 2
    # Replicas cannot share a fixed container name or host port.
    assert "container_name" not in services["predictor"] and "ports" not in services["predictor"]
