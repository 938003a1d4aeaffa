"""Dockerfiles, parsed (no Docker engine here): a pinned Python base, one base image with the dependencies
and code, one small image per service with a non-root user, a HEALTHCHECK on the service's health URL and
the service's command as entrypoint; the build context (.dockerignore) holds what the build copies."""

from __future__ import annotations

import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser

PYTHON_BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")
PORT_VAR = {"gateway": "TIMEX_GATEWAY_PORT", "webapp": "TIMEX_WEBAPP_PORT"}  # stream services: TIMEX_WEB_PORT


def final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    froms = [i for i, ins in enumerate(parser.structure) if ins["instruction"] == "FROM"]
    return parser.structure[froms[-1]:]


def instructions(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [ins["value"] for ins in stage if ins["instruction"] == name]


def env_of(stage: list[dict[str, Any]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in instructions(stage, "ENV"):
        env |= dict(pair.split("=", 1) for pair in value.split())
    return env


def project_version(repo: Path) -> str:
    return tomllib.loads((repo / "pyproject.toml").read_text())["project"]["version"]


def test_every_image_the_deployments_name_has_a_dockerfile(compose: dict, manifests: list[dict], dockerfiles: dict,
                                                           layout) -> None:
    named = {s["image"] for s in compose["services"].values()}
    named |= {c["image"] for d in manifests if d["kind"] == "Deployment"
              for c in d["spec"]["template"]["spec"]["containers"]}
    ours = {image for image in named if image.startswith(layout.image_prefix)}
    assert named - ours == {"apache/kafka:4.3.1"}
    version = project_version(layout.repo)
    for image in ours:
        name, tag = image.split(":")
        assert name in dockerfiles, f"no docker/{name.removeprefix(layout.image_prefix)}.Dockerfile for {image}"
        assert tag == version, image
    assert set(dockerfiles) == {layout.image_prefix + s for s in ("base", *layout.services)}


def test_every_image_runs_as_a_non_root_user_with_a_health_check(dockerfiles: dict) -> None:
    for image, parser in dockerfiles.items():
        stage = final_stage(parser)
        users = instructions(stage, "USER")
        assert users and users[-1].split(":")[0] not in {"root", "0"}, image
        (healthcheck,) = instructions(stage, "HEALTHCHECK")
        assert "CMD" in healthcheck and "NONE" not in healthcheck, image
        assert "curl" not in healthcheck and "wget" not in healthcheck, image  # not in slim images
        assert json.loads(instructions(stage, "ENTRYPOINT")[-1])[0] == "timex-stream", image


def test_base_images_are_pinned(dockerfiles: dict, layout) -> None:
    version = project_version(layout.repo)
    for image, parser in dockerfiles.items():
        for parent in parser.parent_images:
            if parent.startswith(layout.image_prefix):
                assert parent == f"{layout.image_prefix}base:{version}", image  # our base, same release
            else:
                assert PYTHON_BASE.match(parent), f"{image}: {parent} is not an exact python:3.11.x-slim tag"


def test_base_installs_the_pinned_project_and_leaves_no_build_tools(dockerfiles: dict, layout) -> None:
    base = dockerfiles[layout.image_prefix + "base"]
    assert base.is_multistage
    build_runs = " ".join(instructions(base.structure[: -len(final_stage(base))], "RUN"))
    assert re.search(r"pip .*install -c constraints\.txt \.(\s|$)", build_runs), build_runs
    final = final_stage(base)
    final_text = " ".join(f"{i['instruction']} {i['value']}" for i in final)
    assert "COPY --from=build /opt/timex /opt/timex" in final_text
    assert not re.search(r"pip[^|&;]* install|apt-get install|gcc|g\+\+|build-essential|\bmake\b", final_text)
    assert "/opt/timex/bin" in env_of(final)["PATH"]


def test_base_carries_the_lstm_extra_by_default(dockerfiles: dict, layout) -> None:
    """The predictor and live images (on this base) run the lstm model: its extra is in the default EXTRAS, and
    the step that lists the requirements reads the optional dependencies named there."""
    base = dockerfiles[layout.image_prefix + "base"]
    args = dict(value.split("=", 1) for value in instructions(base.structure, "ARG") if "=" in value)
    assert "lstm" in args["EXTRAS"].split(",")
    listing = next(value for value in instructions(base.structure, "RUN") if "requirements.txt" in value)
    assert "optional-dependencies" in listing and '"$EXTRAS"' in listing
    extra = tomllib.loads((layout.repo / "pyproject.toml").read_text())["project"]["optional-dependencies"]["lstm"]
    assert any(d.startswith("jax") for d in extra)


def test_base_copies_every_package_the_project_installs(dockerfiles: dict, layout) -> None:
    base = dockerfiles[layout.image_prefix + "base"]
    copied = {src for value in instructions(base.structure, "COPY") if not value.startswith("--from")
              for src in value.split()[:-1]}
    pyproject = tomllib.loads((layout.repo / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"pyproject.toml", "constraints.txt", pyproject["project"]["readme"]} == copied


def test_service_images_run_their_service_and_check_its_health_port(dockerfiles: dict, layout) -> None:
    for service in layout.services:
        stage = final_stage(dockerfiles[layout.image_prefix + service])
        assert json.loads(instructions(stage, "ENTRYPOINT")[-1]) == ["timex-stream", "service", service]
        env = env_of(stage)
        var = PORT_VAR.get(service, "TIMEX_WEB_PORT")
        port = env[var]
        assert env[var.replace("_PORT", "_HOST")] == "0.0.0.0", service
        assert instructions(stage, "EXPOSE") == [port], service
        (healthcheck,) = instructions(stage, "HEALTHCHECK")
        assert f"os.environ.get('{var}', '{port}')" in healthcheck and "/health'" in healthcheck, service
        # Small: the service layer adds settings, never files or packages.
        assert not instructions(stage, "COPY") and not instructions(stage, "RUN"), service


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: last matching pattern wins, `!` re-includes, a matched directory covers its
    contents, `**/` matches any number of directories."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for raw in patterns:
        pattern = raw.removeprefix("!")
        if any(fnmatch(c, pattern) or (pattern.startswith("**/") and fnmatch(c.split("/")[-1], pattern[3:]))
               for c in candidates):
            result = not raw.startswith("!")
    return result


def test_dockerignore_keeps_the_context_to_what_the_build_copies(layout) -> None:
    lines = (layout.repo / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    pyproject = tomllib.loads((layout.repo / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    needed = ["pyproject.toml", "constraints.txt", "README.md"]
    for package in packages:
        needed += [str(p.relative_to(layout.repo)) for p in (layout.repo / package).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts]
    assert [p for p in needed if ignored(p, patterns)] == []
    left_out = [".venv/bin/python", ".git/HEAD", "tests/conftest.py", "bench/run.py", "strimzi/kafka.yaml",
                "docker-compose.yml", "docker/base.Dockerfile", "schemas/__pycache__/codec.cpython-311.pyc",
                "timex_stream.egg-info/PKG-INFO"]
    assert [p for p in left_out if not ignored(p, patterns)] == []


def test_every_data_file_ships_in_the_installed_package(layout) -> None:
    # The image installs the project as a wheel (not editable): a file not in package-data is missing there.
    pyproject = tomllib.loads((layout.repo / "pyproject.toml").read_text())
    package_data: dict[str, list[str]] = pyproject["tool"]["setuptools"].get("package-data", {})
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    missing = []
    for package in packages:
        for path in (layout.repo / package).rglob("*"):
            if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts:
                inner = path.relative_to(layout.repo / package).as_posix()
                if not any(fnmatch(inner, pattern) for pattern in package_data.get(package, [])):
                    missing.append(f"{package}/{inner}")
    assert missing == [], f"add to [tool.setuptools.package-data]: {missing}"
