"""What the flow tests share: their timeout and readers of what the stack did. A plugin (tests/conftest.py
`pytest_plugins`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from schemas import BY_NAME, Topic, decode_as
from schemas.topics import BEST_MODELS
from timex_stream.runtime.kafka import consumer

if TYPE_CHECKING:
    from timex_stream.tools.stack import Stack

TIMEOUT = 180


def records_of(bootstrap: str, topics: Sequence[Topic], rids: Sequence[str]) -> dict[str, dict[str, list[dict]]]:
    """Topic → request id → every record of `rids` (keyed by request id) on `topics`, read from the start until
    nothing came for 5 s."""
    cons = consumer(bootstrap, f"records-{uuid.uuid4().hex[:8]}")
    cons.subscribe([t.name for t in topics])
    found: dict[str, dict[str, list[dict]]] = {t.name: {rid: [] for rid in rids} for t in topics}
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 5:
        msg = cons.poll(0.5)
        if msg is None or msg.error():
            continue
        idle_since = time.monotonic()
        rid = (msg.key() or b"").decode()
        if rid in found[msg.topic()]:
            found[msg.topic()][rid].append(decode_as(BY_NAME[msg.topic()].value, msg.value()))
    cons.close()
    return found


def best_models_for(bootstrap: str, rid: str) -> list[str]:
    return [best["series"] for best in records_of(bootstrap, [BEST_MODELS], [rid])[BEST_MODELS.name][rid]]


def stall_repairs(stack: Stack, rid: str) -> list[str]:
    """The validator's log lines where it had to ask for lost units of `rid` again."""
    log = (stack.log_dir / "validator.log").read_text(errors="replace")
    return [line for line in log.splitlines() if "stalled" in line and f"{rid}/" in line]
