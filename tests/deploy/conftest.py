"""What the deployment tests compare: the artifacts (docker-compose, Dockerfiles, Strimzi manifests) as data,
and the facts the code states as data: the topics each service uses (`schemas.wiring`) and the environment
variables Settings reads (`timex_stream.runtime.settings.VARIABLES`).

Offline and Docker-free: the schemas come from ../shared (compose-spec, Strimzi CRDs), beside the repo or
beside the repo it was cloned from; TIMEX_SHARED_DIR names another place.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from schemas.wiring import WIRING, Wiring
from timex_stream.runtime.settings import VARIABLES

REPO = Path(__file__).resolve().parents[2]
STRIMZI = REPO / "strimzi"
DOCKER = REPO / "docker"
IMAGE_PREFIX = "timex-stream-"
FAUST_SERVICES = tuple(name for name, w in WIRING.items() if w.faust)
# Services that talk to Kafka (the webapp only talks HTTP to the gateway).
KAFKA_SERVICES = tuple(WIRING)
SERVICES = (*KAFKA_SERVICES, "webapp")
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
    """The manifests base/kustomization.yaml applies (itself and the overlays are kustomize config, not objects)."""
    return sorted(p for p in (STRIMZI / "base").glob("*.yaml") if p.name != "kustomization.yaml")


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


@pytest.fixture(scope="session")
def kafka_use() -> dict[str, Wiring]:
    """What each Kafka client consumes and produces, by service name, as it declares (the services check
    themselves against their declaration: tests/deploy/test_wiring.py)."""
    return dict(WIRING)


@pytest.fixture(scope="session")
def env_names() -> set[str]:
    """Every variable Settings reads (the rows of its table; the request limits are not deployed)."""
    return {v.name for v in VARIABLES}


@pytest.fixture(scope="session")
def layout() -> Layout:
    return Layout()
