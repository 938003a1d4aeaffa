"""What the flow tests share: their timeout and readers of what the stack did. A plugin (tests/conftest.py
`pytest_plugins`)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from schemas import BY_NAME, Topic, decode_as
from schemas.topics import BEST_MODELS, DATASETS, PREDICTIONS
from timex_stream.runtime.kafka import consumer

if TYPE_CHECKING:
    from timex_stream.tools.stack import Stack

TIMEOUT = 180


def records_of(bootstrap: str, topics: Sequence[Topic], rids: Sequence[str]) -> dict[str, dict[str, list[dict]]]:
    """Topic → request id → every record of `rids` (keyed by request id, or by its series: `rid/series`) on
    `topics`, read from the start until nothing came for 5 s."""
    cons = consumer(bootstrap, f"records-{uuid.uuid4().hex[:8]}")
    cons.subscribe([t.name for t in topics])
    found: dict[str, dict[str, list[dict]]] = {t.name: {rid: [] for rid in rids} for t in topics}
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 5:
        msg = cons.poll(0.5)
        if msg is None or msg.error():
            continue
        idle_since = time.monotonic()
        rid = (msg.key() or b"").decode().split("/", 1)[0]
        if rid in found[msg.topic()]:
            found[msg.topic()][rid].append(decode_as(BY_NAME[msg.topic()].value, msg.value()))
    cons.close()
    return found


def best_models_for(bootstrap: str, rid: str) -> list[str]:
    return [best["series"] for best in records_of(bootstrap, [BEST_MODELS], [rid])[BEST_MODELS.name][rid]]


def unanswered_units(bootstrap: str, rid: str) -> Counter[tuple[str, int, bool]]:
    """(series, unit index, refit) → how many of `rid`'s `datasets` records for that unit no `predictions` record
    answered. A unit the predictors took and lost (offset committed, no answer) shows here even when the
    validator's stall timer asked for it again: the repair's own record is answered, the first one is not."""
    found = records_of(bootstrap, (DATASETS, PREDICTIONS), [rid])

    def units(records: list[dict]) -> Counter[tuple[str, int, bool]]:
        return Counter((r["series"], u["index"], u["refit"]) for r in records
                       for u in [r["unit"], *[m.get("unit", m) for m in r.get("more") or []]])
    return units(found[DATASETS.name][rid]) - units(found[PREDICTIONS.name][rid])


def stall_repairs(stack: Stack, rid: str) -> list[str]:
    """The validator's log lines where it had to ask for lost units of `rid` again."""
    log = (stack.log_dir / "validator.log").read_text(errors="replace")
    return [line for line in log.splitlines() if "stalled" in line and f"{rid}/" in line]
