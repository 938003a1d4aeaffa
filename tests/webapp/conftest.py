"""Browser tests: headless Chromium by default (plain `pytest` must work on a machine without a display),
one gateway process on the session stack, screenshots under test-artifacts/ (ignored by git)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.plugins.gateways import Gateway

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "headless"):  # dash's pytest plugin is loaded
        config.option.headless = True
    chromium = shutil.which("chromium")
    if chromium and "DASH_TEST_CHROMEPATH" not in os.environ:  # Debian's Chromium, not Google Chrome
        os.environ["DASH_TEST_CHROMEPATH"] = chromium


@pytest.fixture(scope="module")
def gateway_url(launch_gateway: Callable[..., Gateway]) -> str:
    return launch_gateway("gateway-ui").url


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
