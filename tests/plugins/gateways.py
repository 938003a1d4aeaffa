"""Gateway processes on the session stack: `launch_gateway` starts one on a free port and waits for /health.
A plugin (tests/conftest.py `pytest_plugins`): the gateway, webapp, corpus and flow tests share it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from timex_stream.broker.embedded import free_port
from timex_stream.stack import Stack, _http_ready


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


def wait_healthy(gw: Gateway, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not _http_ready(f"{gw.url}/health"):
        if gw.proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {gw.proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"gateway on {gw.url} not healthy after {timeout} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def launch_gateway(stack: Stack) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def launch(instance: str, port: int | None = None, **env: str) -> Gateway:
        port = port or free_port()
        gw = Gateway(stack.launch("gateway", instance, TIMEX_GATEWAY_PORT=str(port), **env), port)
        started.append(gw)
        wait_healthy(gw)
        return gw

    yield launch
    for gw in started:
        if gw.proc.poll() is None:
            gw.stop()
