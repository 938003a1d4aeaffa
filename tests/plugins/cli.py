"""The `cli` fixture (`timex-stream ARGS` in-process against the session stack) and what the CLI tests share.
A plugin (tests/conftest.py `pytest_plugins`): the cli, replay and compare tests use it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from timex_stream.runtime.records import now_ms

if TYPE_CHECKING:
    from timex_stream.tools.stack import Stack

TIMEOUT = 120
FAST = "naive,seasonal_naive"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(name="cli")
def cli_fixture(stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `timex-stream ARGS` in-process against the session broker → (exit code, stdout, stderr)."""
    from timex_stream.tools.cli import main

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", stack.bootstrap)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def boundary() -> int:
    """A millisecond strictly after every record acknowledged so far and before any produced next."""
    t = now_ms() + 1
    while now_ms() < t:
        pass
    return t
