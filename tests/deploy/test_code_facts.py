"""The facts the other deployment tests derive from the code are checked here, so a change in how the
services are written cannot make the derivation silently find nothing."""

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
    allowed = {"timex_stream/settings.py", "timex_stream/stack.py", "timex_stream/cli.py",
               "timex_stream/broker/embedded.py"}
    assert readers <= allowed, sorted(readers - allowed)


def test_faust_services_use_catalogue_topics_only(kafka_use: dict, layout) -> None:
    names = {t.name for t in CATALOGUE}
    for service in layout.faust_services:
        use = kafka_use[service]
        assert use.consumed and use.produced, service
        assert use.consumed | use.produced <= names, service
        # A declared topic neither consumed nor sent to would escape the ACL check.
        assert use.declared <= use.consumed | use.produced, service


def test_the_derivation_follows_the_flow(kafka_use: dict) -> None:
    ingestion, predictor, validator = kafka_use["ingestion"], kafka_use["predictor"], kafka_use["validator"]
    assert ingestion.consumed == {"configs"} and {"series", "datasets"} <= ingestion.produced
    assert predictor.consumed == {"datasets", "series"} and "predictions" in predictor.produced
    assert validator.consumed == {"predictions", "series"} and "best-models" in validator.produced
    assert all("dead-letters" in u.produced for u in (ingestion, predictor, validator))
    assert validator.internal == {"timex-validator-__assignor-__leader", "timex-validator-series-states-changelog"}
    assert predictor.group == "timex-predictor"


def test_faust_app_id_is_timex_dash_service(layout) -> None:
    # ACLs and consumer groups assume Faust's app id (= group id, internal topic prefix) is timex-<service>.
    assert 'App(f"timex-{service}"' in (layout.repo / "timex_stream" / "faust_app.py").read_text()


def test_the_gateway_derivation_follows_its_code(kafka_use: dict) -> None:
    gateway = kafka_use["gateway"]
    assert gateway.consumed == {"configs", "requests", "progress", "best-models", "failures"}
    assert gateway.produced == {"configs"}
    assert (gateway.group, gateway.group_pattern) == ("timex-gateway", "prefix")
