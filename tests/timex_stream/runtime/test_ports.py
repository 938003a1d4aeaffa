"""`free_port`: ports below the kernel's ephemeral range (where outgoing connections take theirs), each free when
handed out and never handed out twice in a process."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from timex_stream.runtime import ports
from timex_stream.runtime.ports import LOWEST, ephemeral_start, free_port


def test_ports_are_below_the_ephemeral_range_bindable_and_never_the_same_twice() -> None:
    high = ephemeral_start()
    handed = [free_port() for _ in range(300)]
    assert len(set(handed)) == len(handed)
    if high - LOWEST >= 1000:
        assert all(LOWEST <= p < high for p in handed)
    with socket.socket() as s:
        s.bind(("127.0.0.1", handed[-1]))  # still free


def test_a_port_someone_listens_on_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        # The first choice is the bound port; the rest are the real draws (a fixed second choice may itself be
        # taken by another process's connection or handed out before in this process: CI drew such a one).
        real = random.Random(taken).randrange
        first = iter([taken])
        monkeypatch.setattr(ports.random, "randrange", lambda *a: next(first, None) or real(*a))
        chosen = ports.free_port()
        assert chosen != taken  # the first choice is bound: another one is handed out
        assert next(first, None) is None  # and the bound port was indeed tried first


def test_the_range_read_from_the_kernel_or_its_default(tmp_path: Path) -> None:
    (tmp_path / "range").write_text("40000\t60999\n")
    assert ephemeral_start(tmp_path / "range") == 40000
    assert ephemeral_start(tmp_path / "missing") == 32768
