"""What the flow tests share: their timeout and readers of what the stack did. A plugin (tests/conftest.py
`pytest_plugins`)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from schemas import decode_as
from schemas.topics import BEST_MODELS
from timex_stream.runtime.kafka import consumer

if TYPE_CHECKING:
    from timex_stream.tools.stack import Stack

TIMEOUT = 180


def best_models_for(bootstrap: str, rid: str) -> list[str]:
    cons = consumer(bootstrap, f"count-{uuid.uuid4().hex[:8]}")
    cons.subscribe([BEST_MODELS.name])
    series: list[str] = []
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 5:
        msg = cons.poll(0.5)
        if msg is None or msg.error():
            continue
        idle_since = time.monotonic()
        if msg.key() == rid.encode():
            series.append(decode_as("BestModel", msg.value())["series"])
    cons.close()
    return series


def stall_repairs(stack: Stack, rid: str) -> list[str]:
    """The validator's log lines where it had to ask for lost units of `rid` again."""
    log = (stack.log_dir / "validator.log").read_text(errors="replace")
    return [line for line in log.splitlines() if "stalled" in line and f"{rid}/" in line]
