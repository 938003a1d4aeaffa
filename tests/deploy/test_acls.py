"""Each KafkaUser's ACLs allow exactly what its service does on Kafka, as it declares (`schemas.wiring`; the
services are held to their declaration by tests/deploy/test_wiring.py): Read on the topics it consumes, Write
on the ones it produces, its consumer group, and Create/Read/Write on the internal topics Faust makes for the
app; Describe on topics it only checks exist."""

from __future__ import annotations

from typing import Any

from schemas.wiring import Wiring

Acl = tuple[str, str, str, str]  # resource type, name, pattern type, operation
CONSUME, PRODUCE, INTERNAL = ("Read", "Describe"), ("Write", "Describe"), ("Create", "Read", "Write", "Describe")


def expected_acls(use: Wiring) -> set[Acl]:
    acls = {("group", use.group, use.group_pattern, "Read")}
    described = {t.name for t in use.describes}
    for topics, ops in ((use.consumes, CONSUME), (use.produced, PRODUCE), (use.internal, INTERNAL),
                        (described, ("Describe",))):
        acls |= {("topic", topic, "literal", op) for topic in topics for op in ops}
    return acls


def actual_acls(user: dict[str, Any]) -> set[Acl]:
    acls = set()
    for rule in user["spec"]["authorization"]["acls"]:
        assert rule.get("type", "allow") == "allow" and rule.get("host", "*") == "*", rule
        resource = rule["resource"]
        pattern = resource.get("patternType", "literal")
        acls |= {(resource["type"], resource["name"], pattern, op) for op in rule["operations"]}
    return acls


def test_there_is_one_kafka_user_per_kafka_client(manifests: list[dict], layout) -> None:
    users = {o["metadata"]["name"] for o in manifests if o["kind"] == "KafkaUser"}
    assert users == {f"timex-{s}" for s in layout.kafka_services}  # the webapp talks HTTP only


def test_acls_cover_exactly_what_each_service_consumes_and_produces(manifests: list[dict], kafka_use: dict) -> None:
    users = {o["metadata"]["name"]: o for o in manifests if o["kind"] == "KafkaUser"}
    for service, use in kafka_use.items():
        user = users[f"timex-{service}"]
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        expected, actual = expected_acls(use), actual_acls(user)
        assert actual == expected, f"{service}: missing {sorted(expected - actual)}, extra {sorted(actual - expected)}"


def test_no_user_gets_cluster_wide_or_wildcard_rights(manifests: list[dict]) -> None:
    for user in (o for o in manifests if o["kind"] == "KafkaUser"):
        for rule in user["spec"]["authorization"]["acls"]:
            assert rule["resource"]["type"] in {"topic", "group"}, user["metadata"]["name"]
            assert rule["resource"]["name"] != "*" and "All" not in rule["operations"], user["metadata"]["name"]
