"""What the deployment tests compare: the artifacts (docker-compose, Dockerfiles, Strimzi manifests) as data,
and the facts the code states (topic use per service, environment variables), read from the source with
`ast`, never by importing the services (importing one creates its Faust app, which needs a broker).

Offline and Docker-free: the schemas come from ../shared (compose-spec, Strimzi CRDs), beside the repo or
beside the repo it was cloned from; TIMEX_SHARED_DIR names another place.
"""

from __future__ import annotations

import ast
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from schemas import topics as catalogue

REPO = Path(__file__).resolve().parents[2]
STRIMZI = REPO / "strimzi"
DOCKER = REPO / "docker"
IMAGE_PREFIX = "timex-stream-"
FAUST_SERVICES = ("ingestion", "predictor", "validator")
SERVICES = (*FAUST_SERVICES, "gateway", "webapp")
# Services that talk to Kafka (the webapp only talks HTTP to the gateway).
KAFKA_SERVICES = (*FAUST_SERVICES, "gateway")
# Added by the Strimzi deployment for SCRAM-SHA-512 over TLS; the clients read them through Settings.from_env.
KAFKA_SECURITY_VARS = frozenset({"KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME",
                                 "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CA_LOCATION"})


def _shared_dir() -> Path:
    """Where the compose spec and Strimzi CRDs are: $TIMEX_SHARED_DIR, else ../shared beside this repo, else
    beside the repo it was cloned from (a clone in a temporary directory, as a CI check makes)."""
    if "TIMEX_SHARED_DIR" in os.environ:
        candidates = [Path(os.environ["TIMEX_SHARED_DIR"])]
    else:
        origin = subprocess.run(["git", "-C", str(REPO), "remote", "get-url", "origin"],
                                capture_output=True, text=True, check=False).stdout.strip()
        candidates = [REPO.parent / "shared"] + ([Path(origin).parent / "shared"] if Path(origin).is_dir() else [])
    found = next((c for c in candidates if (c / "strimzi-crds").is_dir()), None)
    assert found is not None, f"no shared/ with strimzi-crds in {[str(c) for c in candidates]}: set TIMEX_SHARED_DIR"
    return found


@dataclass(frozen=True)
class Layout:
    """Where things are and what the deployments consist of (a fixture: test modules cannot import conftest)."""

    repo: Path = REPO
    shared: Path = field(default_factory=_shared_dir)
    strimzi: Path = STRIMZI
    docker: Path = DOCKER
    image_prefix: str = IMAGE_PREFIX
    services: tuple[str, ...] = SERVICES
    faust_services: tuple[str, ...] = FAUST_SERVICES
    kafka_services: tuple[str, ...] = KAFKA_SERVICES
    kafka_security_vars: frozenset[str] = KAFKA_SECURITY_VARS


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def strimzi_files() -> list[Path]:
    """The manifests kustomization.yaml applies (itself and the overlays are kustomize config, not objects)."""
    return sorted(p for p in STRIMZI.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="session")
def manifests() -> list[dict[str, Any]]:
    return [doc for path in strimzi_files() for doc in load_yaml_docs(path)]


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.fixture(scope="session")
def deployments(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployments by service name (Deployment `timex-<service>`)."""
    return {name.removeprefix("timex-"): d for name, d in of_kind(manifests, "Deployment").items()}


@pytest.fixture(scope="session")
def dockerfiles() -> dict[str, DockerfileParser]:
    """Parsed Dockerfiles by the image they build: docker/<x>.Dockerfile builds timex-stream-<x>."""
    return {IMAGE_PREFIX + p.name.removesuffix(".Dockerfile"): DockerfileParser(path=str(p))
            for p in sorted(DOCKER.glob("*.Dockerfile"))}


# --- facts from the code ---------------------------------------------------------------------------------

def env_names_read_by_settings() -> set[str]:
    """Every variable `Settings.from_env` reads: the keys of `e.get("NAME", ...)` and `e["NAME"]`."""
    tree = ast.parse((REPO / "timex_stream" / "settings.py").read_text())
    settings = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    from_env = next(n for n in settings.body if isinstance(n, ast.FunctionDef) and n.name == "from_env")
    names: set[str] = set()
    for node in ast.walk(from_env):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "e"
                and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(node.args[0].value)
        elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "e"
              and isinstance(node.slice, ast.Constant)):
            names.add(node.slice.value)
    return names


@dataclass(frozen=True)
class KafkaUse:
    """What one service does on Kafka: the ACLs it needs follow from this."""

    group: str
    consumed: frozenset[str]
    produced: frozenset[str]
    internal: frozenset[str] = frozenset()  # topics Faust creates for the app itself
    described: frozenset[str] = frozenset()  # topics it only checks exist
    group_pattern: str = "literal"
    declared: frozenset[str] = field(default=frozenset(), compare=False)  # every raw_topic of the module


def _catalogue_name(node: ast.expr) -> str:
    """`CONFIGS` (a schemas.topics constant) -> "configs"."""
    assert isinstance(node, ast.Name), ast.dump(node)
    topic = getattr(catalogue, node.id)
    assert topic in catalogue.CATALOGUE, f"{node.id} is not in the catalogue"
    return topic.name


def _raw_topic_assignments(tree: ast.Module) -> dict[str, str]:
    """Module-level `x = raw_topic(app, X)` and `x, y = raw_topic(app, X), raw_topic(app, Y)`: var -> topic."""
    found: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = (zip(target.elts, node.value.elts, strict=True)
                     if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                     else [(target, node.value)])
            for var, value in pairs:
                if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                        and value.func.id == "raw_topic" and isinstance(var, ast.Name)):
                    found[var.id] = _catalogue_name(value.args[1])
    return found


def faust_service_use(service: str) -> KafkaUse:
    """Read `<service>/service.py`: its app id (`create_app("<service>", ...)` -> `timex-<service>`), the
    topics its agents consume (`@app.agent(var)`; `series` when it makes a `SeriesStore`), the ones it sends
    to (`var.send(...)`, `send_record(var, ...)`, or either over `mapping[...]`, a dict of topic variables,
    plus dead-letters when it calls `decoded` or `send_dead_letter`) and the internal topics Faust creates
    (assignor leader, table changelogs `<app id>-<table>-changelog`)."""
    tree = ast.parse((REPO / service / "service.py").read_text())
    app_ids = [f"timex-{n.args[0].value}" for n in ast.walk(tree)
               if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "create_app"]
    assert len(app_ids) == 1, f"{service}: expected one create_app call, found {app_ids}"
    app_id = app_ids[0]
    topic_of = _raw_topic_assignments(tree)
    # `outputs = {...: datasets, ...}` then `outputs[name].send(...)`: every topic variable in the mapping.
    mappings = {t.id: {topic_of[n.id] for n in ast.walk(a.value) if isinstance(n, ast.Name) and n.id in topic_of}
                for a in ast.walk(tree) if isinstance(a, ast.Assign) and isinstance(a.value, ast.Dict | ast.DictComp)
                for t in a.targets if isinstance(t, ast.Name)}
    consumed: set[str] = set()
    produced: set[str] = set()
    internal = {f"{app_id}-__assignor-__leader"}
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
            for deco in node.decorator_list:
                if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)
                        and deco.func.attr == "agent"):
                    consumed.add(topic_of[deco.args[0].id])  # type: ignore[attr-defined]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        # The channel sent to: `channel.send(...)` or `send_record(channel, ...)`.
        channel = (func.value if isinstance(func, ast.Attribute) and func.attr == "send"
                   else node.args[0] if isinstance(func, ast.Name) and func.id == "send_record" else None)
        if isinstance(channel, ast.Name) and channel.id in topic_of:
            produced.add(topic_of[channel.id])
        elif (isinstance(channel, ast.Subscript) and isinstance(channel.value, ast.Name)
              and channel.value.id in mappings):
            produced |= mappings[channel.value.id]
        elif isinstance(func, ast.Name) and func.id in ("send_dead_letter", "decoded"):  # both park dead letters
            produced.add(catalogue.DEAD_LETTERS.name)
        elif isinstance(func, ast.Name) and func.id == "SeriesStore":  # reads the claim check by position
            consumed.add(catalogue.SERIES.name)
        elif isinstance(func, ast.Attribute) and func.attr == "Table":
            internal.add(f"{app_id}-{node.args[0].value}-changelog")  # type: ignore[attr-defined]
    return KafkaUse(group=app_id, consumed=frozenset(consumed), produced=frozenset(produced),
                    internal=frozenset(internal), declared=frozenset(topic_of.values()))


def gateway_use() -> KafkaUse:
    """The gateway (confluent-kafka, not Faust): it reads every partition of `gateway.state.WATCHED` (the
    index from the beginning, the answers by time, configs at one position) with throw-away group ids
    `timex-gateway-<random>` (no commits), submits configs through
    `timex_stream.submit.submit`, and at start checks that the whole catalogue exists (`ensure_topics`),
    which needs Describe on every catalogue topic (a topic it cannot describe looks missing)."""
    from gateway.state import WATCHED  # no side effects, unlike the Faust service modules

    gateway = {p.name: ast.parse(p.read_text()) for p in (REPO / "gateway").glob("*.py")}
    calls = [n for tree in gateway.values() for n in ast.walk(tree) if isinstance(n, ast.Call)]

    def called(name: str) -> list[ast.Call]:
        return [c for c in calls if isinstance(c.func, ast.Name) and c.func.id == name]

    prefixes = [c.args[1].values[0].value for c in called("consumer")]  # type: ignore[attr-defined]
    assert prefixes and all(p.startswith("timex-gateway") for p in prefixes), prefixes
    # submit() sends the ForecastRequest with `send(producer, CONFIGS, ...)`.
    submits = any(isinstance(n, ast.Name) and n.id == "submit" for c in calls for n in ast.walk(c))
    sent = {_catalogue_name(c.args[1]) for c in ast.walk(ast.parse((REPO / "timex_stream" / "submit.py").read_text()))
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == "send"}
    checks_catalogue = any(len(c.args) == 1 and not c.keywords for c in called("ensure_topics"))
    return KafkaUse(group="timex-gateway", group_pattern="prefix", consumed=frozenset(WATCHED),
                    produced=frozenset(sent if submits else ()),
                    described=frozenset(t.name for t in catalogue.CATALOGUE) if checks_catalogue else frozenset())


@pytest.fixture(scope="session")
def kafka_use() -> dict[str, KafkaUse]:
    """What each Kafka-using service consumes and produces, by service name."""
    return {**{s: faust_service_use(s) for s in FAUST_SERVICES}, "gateway": gateway_use()}


@pytest.fixture(scope="session")
def env_names() -> set[str]:
    return env_names_read_by_settings()


@pytest.fixture(scope="session")
def layout() -> Layout:
    return Layout()
