"""What the ingestion tests share with their conftest: `NetGuard` (the record of every connection a test tried;
the autouse `net_guard` fixture in tests/ingestion/conftest.py installs it) and the bytes its servers serve.
A plugin (tests/conftest.py `pytest_plugins`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass
class NetGuard:
    violations: list[str] = field(default_factory=list)
    connections: list[tuple[str, int]] = field(default_factory=list)  # every allowed (loopback) connect

    def check(self, what: str, address: Any, record: bool = True) -> None:
        host = address[0] if isinstance(address, tuple) and address else address
        try:
            loopback = ipaddress.ip_address(host) in _LOOPBACK
        except (TypeError, ValueError):
            loopback = False  # a name: resolving it could reach anything
        if not loopback:
            self.violations.append(f"{what} {address!r}")
            raise AssertionError(f"test tried {what} {address!r}, outside 127.0.0.0/8")
        if record:
            self.connections.append((str(host), int(address[1])))


CSV = b"date,a\n2020-01-01,1\n2020-01-02,2\n"
BOMB_OUTPUT_BYTES = 20_000_000
