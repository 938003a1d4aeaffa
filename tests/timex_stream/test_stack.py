"""`timex-stream up` (what `make up` runs): broker + topics + services, a `ready:` line, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from schemas import CATALOGUE
from timex_stream.broker.embedded import free_port
from timex_stream.kafka import admin
from timex_stream.settings import Settings


def _java_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "kafka.Kafka"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_up_prints_ready_lists_topics_and_stops_clean(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(TIMEX_DATA_DIR=str(tmp_path), TIMEX_CACHE_DIR=str(Settings.from_env().cache_dir),
               TIMEX_KAFKA_PORT=str(port), TIMEX_KAFKA_CONTROLLER_PORT=str(free_port()),
               TIMEX_GATEWAY_PORT=str(free_port()), TIMEX_WEBAPP_PORT=str(free_port()))
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
                break
        assert lines and lines[-1].startswith("ready:"), "".join(lines)
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
