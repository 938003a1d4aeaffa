"""Gateway processes on the session stack: `launch_gateway` starts one on a free port and waits for /health;
`fast_config`, `sse` and `wait_for` talk to one. A plugin (tests/conftest.py `pytest_plugins`): the gateway,
webapp, corpus and flow tests share it."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.plugins.frames import make_config
from tests.plugins.waiting import wait_until
from timex_stream.runtime.ports import free_port
from timex_stream.tools.stack import Stack, _http_ready


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
    def healthy() -> bool:
        if gw.proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {gw.proc.returncode}")
        return _http_ready(f"{gw.url}/health")

    wait_until(healthy, timeout, what=f"gateway on {gw.url} healthy")


GATEWAY_TIMEOUT = 120


def fast_config(url: str, columns: list[str]) -> dict[str, Any]:
    return make_config(url, columns, models="naive,seasonal_naive")


def sse(url: str, timeout: float = GATEWAY_TIMEOUT, headers: dict[str, str] | None = None
        ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a server-sent event stream until the server closes it."""
    with requests.get(url, stream=True, timeout=timeout, headers=headers) as resp:
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        name, data = None, []
        for line in resp.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and name:
                yield name, json.loads("\n".join(data))
                name, data = None, []


def wait_for(url: str, check: Callable[[requests.Response], bool], timeout: float = GATEWAY_TIMEOUT,
             headers: dict[str, str] | None = None) -> requests.Response:
    last: list[requests.Response] = []

    def answered() -> requests.Response | None:
        last[:] = [requests.get(url, timeout=10, headers=headers)]
        return last[0] if check(last[0]) else None

    try:
        return wait_until(answered, timeout, what=url)
    except TimeoutError:
        raise TimeoutError(f"{url}: {last[0].status_code} {last[0].text[:300]}") from None


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
