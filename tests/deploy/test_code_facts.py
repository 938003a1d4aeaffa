"""The facts the other deployment tests take from the code (the wiring declarations, the Settings table) are
checked here, so a declaration cannot silently say nothing."""

from __future__ import annotations

import ast

from schemas import CATALOGUE


def test_settings_from_env_reads_the_documented_variables(env_names: set[str]) -> None:
    assert {"KAFKA_BOOTSTRAP_SERVERS", "TIMEX_WEB_PORT", "TIMEX_GATEWAY_URL", "TIMEX_DATA_DIR"} <= env_names
    assert all(n.startswith(("TIMEX_", "KAFKA_")) for n in env_names), env_names


def test_settings_is_where_services_read_the_environment(layout) -> None:
    readers = set()
    for package in (*layout.services, "schemas", "forecasting", "timex_stream"):
        for path in (layout.repo / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}
                        and isinstance(node.value, ast.Name) and node.value.id == "os"):
                    readers.add(str(path.relative_to(layout.repo)))
    # settings.py reads it; the local stack (not deployed) passes it on to its children and picks broker ports.
    allowed = {"timex_stream/runtime/settings.py", "timex_stream/tools/stack.py", "timex_stream/tools/cli.py",
               "timex_stream/tools/broker/embedded.py"}
    assert readers <= allowed, sorted(readers - allowed)


def test_declarations_name_catalogue_topics_only(kafka_use: dict) -> None:
    for service, use in kafka_use.items():
        assert use.consumes and use.produced, service
        topics = (*use.subscribes, *use.reads, *use.produces, *use.describes)
        assert all(t in CATALOGUE for t in topics), service  # the catalogue's own Topic, not a look-alike


def test_the_declarations_follow_the_flow(kafka_use: dict) -> None:
    ingestion, predictor, validator = kafka_use["ingestion"], kafka_use["predictor"], kafka_use["validator"]
    assert ingestion.consumes == {"configs"} and {"series", "datasets"} <= ingestion.produced
    assert predictor.consumes == {"datasets", "series"} and "predictions" in predictor.produced
    assert validator.consumes == {"predictions", "series"} and "best-models" in validator.produced
    assert all("dead-letters" in u.produced for u in (ingestion, predictor, validator))
    assert validator.internal == {"timex-validator-__assignor-__leader", "timex-validator-series-states-changelog"}
    assert predictor.group == "timex-predictor"


def test_the_gateway_declaration_follows_its_code(kafka_use: dict) -> None:
    from gateway.state import TAILED, WATCHED  # the gateway builds nothing at import

    gateway = kafka_use["gateway"]
    assert gateway.consumes == {"configs", "requests", "progress", "best-models", "failures",
                                "forecast-history"} == set(WATCHED)  # forecast-history: live requests' revisions
    assert {t.name for t in gateway.subscribes} == set(TAILED)
    assert gateway.produced == {"configs", "standing"}  # standing: DELETE /api/requests/{id} stops a live one
    assert (gateway.group, gateway.group_pattern, gateway.faust) == ("timex-gateway", "prefix", False)
    assert set(gateway.describes) == set(CATALOGUE)  # ensure_topics checks the whole catalogue at start


def test_make_up_waits_for_the_declared_groups(kafka_use: dict) -> None:
    from timex_stream.runtime.settings import Settings
    from timex_stream.tools.stack import service_specs

    groups = {spec.name: spec.group for spec in service_specs(Settings()) if spec.group}
    assert groups == {name: use.group for name, use in kafka_use.items() if use.group_pattern == "literal"}
