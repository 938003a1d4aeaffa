"""Local ports: a free one for a process that needs any (a service's web page, a test's broker).

A port the kernel picks (bind to port 0) comes from its ephemeral range, the range every outgoing connection takes
its local port from; between the choice and the service's own bind (seconds: its imports), a Kafka client's
connection took one such port and the service died with "address already in use" (a browser test's stack, once
in a few rounds). So `free_port` picks below that range, where no outgoing connection lands, and never hands out
one port twice in a process.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 20000  # below: the well-known and registered ports many local services use
_handed: set[int] = set()


def ephemeral_start(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768, its default, where that file is missing)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing is bound to on 127.0.0.1 now, below the ephemeral range where it can be (else one the kernel
    picks, as before)."""
    high = ephemeral_start()
    for _ in range(100 if high - LOWEST >= 1000 else 0):
        port = random.randrange(LOWEST, high)
        if port in _handed:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # bound by someone
                continue
        _handed.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _handed.add(port)
    return port
