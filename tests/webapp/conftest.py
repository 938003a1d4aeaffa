"""Browser tests: headless Chromium by default (plain `pytest` must work on a machine without a display),
one gateway process on the session stack, screenshots under test-artifacts/ (ignored by git)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from timex_stream.broker.embedded import free_port
from timex_stream.stack import Stack, _http_ready

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "headless"):  # dash's pytest plugin is loaded
        config.option.headless = True
    chromium = shutil.which("chromium")
    if chromium and "DASH_TEST_CHROMEPATH" not in os.environ:  # Debian's Chromium, not Google Chrome
        os.environ["DASH_TEST_CHROMEPATH"] = chromium


@pytest.fixture(scope="module")
def gateway_url(stack: Stack) -> Iterator[str]:
    port = free_port()
    proc = stack.launch("gateway", "gateway-ui", TIMEX_GATEWAY_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not _http_ready(f"{url}/health"):
        assert proc.poll() is None, f"gateway exited with {proc.returncode}"
        assert time.monotonic() < deadline, "gateway not healthy after 60 s"
        time.sleep(0.2)
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
