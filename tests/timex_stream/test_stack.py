"""`timex-stream up` (what `make up` runs): broker + topics + services, a `ready:` line, clean stop."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import requests

from schemas import CATALOGUE
from timex_stream.broker.embedded import free_port
from timex_stream.kafka import admin
from timex_stream.settings import Settings
from timex_stream.stack import local_api_token


def _java_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "kafka.Kafka"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_up_prints_ready_lists_topics_and_stops_clean(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(TIMEX_DATA_DIR=str(tmp_path), TIMEX_CACHE_DIR=str(Settings.from_env().cache_dir),
               TIMEX_KAFKA_PORT=str(port), TIMEX_KAFKA_CONTROLLER_PORT=str(free_port()),
               TIMEX_GATEWAY_PORT=str(free_port()), TIMEX_WEBAPP_PORT=str(free_port()))
    env.pop("TIMEX_API_TOKENS", None)  # `up` makes its local token
    gateway, webapp = f"http://127.0.0.1:{env['TIMEX_GATEWAY_PORT']}", f"http://127.0.0.1:{env['TIMEX_WEBAPP_PORT']}"
    before = _java_pids()
    proc = subprocess.Popen([sys.executable, "-m", "timex_stream.cli", "up"], env=env, stdout=subprocess.PIPE,
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
    assert _java_pids() <= before, "the broker JVM of `up` is still running"


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
