"""`timex-stream up` (what `make up` runs): broker + topics + services, a `ready:` line, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from schemas import CATALOGUE
from timex_stream.runtime.kafka import admin
from timex_stream.runtime.ports import free_port
from timex_stream.runtime.settings import Settings
from timex_stream.tools.stack import PortTaken, Stack, fixed_ports, local_api_token, service_specs, taken_ports


def _broker_pids(data_dir: Path) -> set[int]:
    """The broker JVMs started with a config under `data_dir` (other brokers on the machine are not ours)."""
    out = subprocess.run(["pgrep", "-f", f"kafka.Kafka {data_dir}/"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_up_prints_ready_lists_topics_and_stops_clean(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(TIMEX_DATA_DIR=str(tmp_path), TIMEX_CACHE_DIR=str(Settings.from_env().cache_dir),
               TIMEX_KAFKA_PORT=str(port), TIMEX_KAFKA_CONTROLLER_PORT=str(free_port()),
               TIMEX_GATEWAY_PORT=str(free_port()), TIMEX_WEBAPP_PORT=str(free_port()))
    env.pop("TIMEX_API_TOKENS", None)  # `up` makes its local token
    gateway, webapp = f"http://127.0.0.1:{env['TIMEX_GATEWAY_PORT']}", f"http://127.0.0.1:{env['TIMEX_WEBAPP_PORT']}"
    proc = subprocess.Popen([sys.executable, "-m", "timex_stream.tools.cli", "up"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
            if line.startswith("ready:"):
                lines.append(proc.stdout.readline())  # type: ignore[union-attr]  # the token line follows
                break
        assert len(lines) > 1 and lines[-2].startswith("ready:"), "".join(lines)
        token_file = tmp_path / "api-token"
        token = token_file.read_text().strip()
        assert lines[-1].startswith(f"token: {token} (also in {token_file}")
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert requests.get(f"{gateway}/api/requests", timeout=10).status_code == 401
        assert requests.get(f"{gateway}/api/requests", headers={"Authorization": f"Bearer {token}"},
                            timeout=10).status_code == 200
        assert requests.get(f"{webapp}/health", timeout=10).json()["api_token"] == "configured"
        # The webapp's own calls carry the token: an unknown id is a 404, not a 401.
        assert requests.get(f"{webapp}/download/nope.csv", timeout=10).status_code == 404
        topics = admin(f"127.0.0.1:{port}").list_topics(timeout=10).topics
        assert {t.name for t in CATALOGUE} <= set(topics)
        assert (tmp_path / "kafka" / "broker.log").exists()
        assert _broker_pids(tmp_path), "the broker of `up` is not found by its data dir"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out = "".join(lines) + proc.communicate()[0]
            raise AssertionError(f"`up` did not stop within 120 s after SIGINT:\n{out}") from None
    assert proc.returncode == 0, out
    assert "stopped" in out
    assert not _broker_pids(tmp_path), "the broker JVM of `up` is still running"


def test_local_api_token_is_made_once_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    token, path = local_api_token(data_dir)
    assert path == data_dir / "api-token" and path.read_text() == token + "\n" and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_api_token(data_dir) == (token, path)  # the next `make up` keeps it
    path.chmod(0o644)
    assert local_api_token(data_dir)[0] == token and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("\n")  # spoilt: a new one
    fresh, _ = local_api_token(data_dir)
    assert fresh != token and len(fresh) >= 40 and path.read_text().strip() == fresh
    assert local_api_token(tmp_path / "other")[0] != fresh  # random, not derived from anything


def _up_env(tmp_path: Path, **ports: int) -> dict[str, str]:
    """The environment of a `timex-stream up` with its own embedded broker, every fixed port free unless given."""
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(TIMEX_DATA_DIR=str(tmp_path), TIMEX_CACHE_DIR=str(Settings.from_env().cache_dir))
    for variable in ("TIMEX_KAFKA_PORT", "TIMEX_KAFKA_CONTROLLER_PORT", "TIMEX_GATEWAY_PORT", "TIMEX_WEBAPP_PORT"):
        env[variable] = str(ports.get(variable, free_port()))
    return env


@pytest.mark.parametrize(("variable", "owner"), [("TIMEX_GATEWAY_PORT", "the gateway"),
                                                 ("TIMEX_KAFKA_PORT", "the embedded Kafka broker")])
def test_up_with_a_port_taken_fails_in_one_line_and_starts_nothing(tmp_path: Path, variable: str,
                                                                    owner: str) -> None:
    with socket.socket() as other_server:  # another server (or an old gateway) listens on the port
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        port = other_server.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "timex_stream.tools.cli", "up"],
                              env=_up_env(tmp_path, **{variable: port}), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"port {port} on 127.0.0.1 ({owner}) is in use" in done.stderr and f"set {variable}" in done.stderr
    assert time.monotonic() - started < 30  # no broker start, no wait for readiness
    assert not _broker_pids(tmp_path), "a broker was started"
    assert not (tmp_path / "kafka").exists() and not (tmp_path / "logs").exists(), "something was started"


def test_fixed_ports_are_those_the_stack_binds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in _up_env(tmp_path).items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    settings = Settings.from_env()
    every = service_specs(settings)
    assert [p.variable for p in fixed_ports(settings, every)] == [
        "TIMEX_KAFKA_PORT", "TIMEX_KAFKA_CONTROLLER_PORT", "TIMEX_GATEWAY_PORT", "TIMEX_WEBAPP_PORT"]
    assert taken_ports(fixed_ports(settings, every)) is None
    # An external broker is not ours to bind; a stack without HTTP services binds no HTTP port.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    external = Settings.from_env()
    assert fixed_ports(external, [s for s in every if s.group]) == []
    with socket.socket() as held:
        held.bind(("127.0.0.1", settings.webapp_port))
        held.listen()
        line = taken_ports(fixed_ports(external, every))
        with pytest.raises(PortTaken, match="TIMEX_WEBAPP_PORT"):
            Stack(external, only=["webapp"]).check_ports()
    assert line is not None and "\n" not in line and f"port {settings.webapp_port}" in line
    assert "TIMEX_WEBAPP_PORT" in line and "TIMEX_GATEWAY_PORT" not in line


def _gateway(kafka_bootstrap: str, tmp_path: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TIMEX_DATA_DIR": str(tmp_path),
           "TIMEX_GATEWAY_PORT": str(port)}
    env.pop("TIMEX_API_TOKENS", None)
    return subprocess.Popen([sys.executable, "-m", "timex_stream.tools.cli", "service", "gateway"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_the_gateway_says_where_it_listens_only_once_it_does(kafka_bootstrap: str, tmp_path: Path) -> None:
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        proc = _gateway(kafka_bootstrap, tmp_path, other_server.getsockname()[1])
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "address already in use" in out.lower(), out
    assert "gateway on http://" not in out, out

    port = free_port()
    proc = _gateway(kafka_bootstrap, tmp_path, port)
    try:
        lines: list[str] = []
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if f"gateway on http://127.0.0.1:{port}" in line:
                break
        assert lines and f"gateway on http://127.0.0.1:{port}" in lines[-1], "".join(lines)
        with socket.create_connection(("127.0.0.1", port), timeout=5):  # listening when it says so
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
