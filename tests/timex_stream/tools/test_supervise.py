"""`make up` supervises its services: a killed service is started again with backoff and every request in
flight is answered; a service that keeps dying is a crash loop that stops the stack in one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from timex_stream.runtime.kafka import producer
from timex_stream.runtime.ports import free_port
from timex_stream.runtime.settings import Settings
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.supervise import BASE_DELAY_S, MAX_DELAY_S, Restarts

SERVICES = ("ingestion", "predictor", "validator", "gateway", "webapp")


def test_backoff_doubles_within_the_window_and_a_crash_loop_stops() -> None:
    r = Restarts(max_restarts=3, window_s=60)
    assert [r.after_exit("validator", t) for t in (0, 1, 2)] == [BASE_DELAY_S, 2 * BASE_DELAY_S, 4 * BASE_DELAY_S]
    assert r.after_exit("predictor", 3) == BASE_DELAY_S  # counted per service
    assert r.after_exit("validator", 4) is None  # a 4th restart within 60 s
    assert "validator exited 4 times within 60 s" in r.crash_loop("validator")
    assert r.total == {"validator": 3, "predictor": 1}


def test_exits_older_than_the_window_are_forgotten_and_the_wait_is_capped() -> None:
    r = Restarts(max_restarts=2, window_s=10)
    assert r.after_exit("gateway", 0) == BASE_DELAY_S
    assert r.after_exit("gateway", 5) == 2 * BASE_DELAY_S
    assert r.after_exit("gateway", 11) == 2 * BASE_DELAY_S  # the exit at 0 left the window
    assert r.after_exit("gateway", 30) == BASE_DELAY_S
    assert r.total["gateway"] == 4
    many = Restarts(max_restarts=100, window_s=1e9)
    assert max(many.after_exit("x", t) or 0 for t in range(20)) == MAX_DELAY_S


class Up:
    """`timex-stream up` as a process, its output read line by line in a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "timex_stream.tools.cli", "up"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float, after: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if m := re.search(pattern, line):
                    return m
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s:\n" + "\n".join(self.lines[-40:]))

    def pid(self, name: str, after: int = 0) -> int:
        return int(self.wait_line(rf"^{name}: pid (\d+)", 5, after).group(1))


def _csv(seed: int) -> bytes:
    frame = pd.DataFrame({"day": pd.date_range("2020-01-01", periods=60, freq="D").strftime("%Y-%m-%d"),
                          "value": [100.0 + ((i * 7 + seed) % 13) for i in range(60)]})
    return frame.to_csv(index=False).encode()


CONFIG = {"activity_title": "supervised", "input_parameters": {"source_data_url": "upload:s.csv",
                                                                "index_column_name": "day", "frequency": "D"},
          "model_parameters": {"models": "naive,seasonal_naive", "possible_transformations": "none",
                               "test_values": 5, "prediction_lags": 5, "main_accuracy_estimator": "mae"}}


@pytest.mark.slow
def test_a_killed_service_is_started_again_and_every_request_is_answered(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(TIMEX_DATA_DIR=str(tmp_path), TIMEX_CACHE_DIR=str(Settings.from_env().cache_dir),
               TIMEX_KAFKA_PORT=str(free_port()), TIMEX_KAFKA_CONTROLLER_PORT=str(free_port()),
               TIMEX_GATEWAY_PORT=str(free_port()), TIMEX_WEBAPP_PORT=str(free_port()),
               TIMEX_VALIDATOR_STALL_S="20", TIMEX_PREDICTOR_CONCURRENCY="1",
               TIMEX_SUPERVISOR_MAX_RESTARTS="2", TIMEX_SUPERVISOR_WINDOW_S="600")
    env.pop("TIMEX_API_TOKENS", None)
    up = Up(env)
    try:
        up.wait_line(r"^ready:", 240)
        bootstrap = up.wait_line(r"^kafka: (\S+)", 1).group(1)
        prod = producer(bootstrap)
        sent: list[str] = []
        for n, name in enumerate(SERVICES):
            # Requests in flight while the service dies: they must all be answered, once.
            sent += [submit(prod, CONFIG, csv=_csv(10 * n + i), origin="test") for i in range(3)]
            mark = len(up.lines)
            os.kill(up.pid(name), signal.SIGKILL)
            up.wait_line(rf"^{name} exited with -9; starting it again in 1 s \(restart 1;", 30, mark)
            up.pid(name, after=mark)  # started again: a new pid line
        views = follow(bootstrap, sent, timeout=240)
        assert {rid: v.status for rid, v in views.items()} == dict.fromkeys(sent, "done")
        assert all(len(v.results) == 1 for v in views.values())
        gateway = f"http://127.0.0.1:{env['TIMEX_GATEWAY_PORT']}"
        metrics = requests.get(f"{gateway}/metrics", timeout=10).text
        assert "timex_service_restarts 1.0" in metrics, metrics[-2000:]
        # The validator again, twice more: the third restart within the window is more than
        # TIMEX_SUPERVISOR_MAX_RESTARTS=2, a crash loop: one line, and the whole stack stops, non-zero.
        mark = len(up.lines)
        os.kill(up.pid("validator", after=_last_pid_line(up, "validator")), signal.SIGKILL)
        up.wait_line(r"^validator exited with -9; starting it again in 2 s \(restart 2;", 30, mark)
        mark = len(up.lines)
        os.kill(up.pid("validator", after=_last_pid_line(up, "validator")), signal.SIGKILL)
        up.wait_line(r"^validator exited 3 times within 600 s: a crash loop", 30, mark)
        assert up.proc.wait(60) == 1
        up.wait_line(r"^stopped$", 10, mark)
    finally:
        if up.proc.poll() is None:
            up.proc.send_signal(signal.SIGTERM)
            up.proc.wait(60)


def _last_pid_line(up: Up, name: str, timeout: float = 30) -> int:
    """The index of the newest `NAME: pid N` line (waiting for a restart's line if one is due)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [i for i, line in enumerate(up.lines) if line.startswith(f"{name}: pid ")]
        exited = [i for i, line in enumerate(up.lines) if line.startswith(f"{name} exited")]
        if found and (not exited or found[-1] > exited[-1]):
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"{name} was not started again:\n" + "\n".join(up.lines[-40:]))
