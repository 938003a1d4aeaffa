"""How the corpus judges what came of a case: shared by its conftest (which sends every case at once) and its
tests. A plugin (tests/conftest.py `pytest_plugins`)."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from dataclasses import dataclass, field

from tests.corpus.cases import Answers, DeadLetter, Expect, Fails, Skipped
from tests.plugins.gateways import Gateway
from timex_stream.runtime.request_view import RequestView


def gateway_skipped(gw: Gateway) -> dict[str, float]:
    """The gateway's count of skipped (unreadable) records per topic, from its /metrics page."""
    with urllib.request.urlopen(f"{gw.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {m[1]: float(m[2]) for m in re.finditer(r'timex_gateway_records_skipped\{topic="([^"]+)"\} (\S+)', text)}


def words_in(message: str, words: tuple[str, ...]) -> bool:
    return all(w.lower() in message.lower() for w in words)


def matching_failures(view: RequestView, expect: Fails) -> list[dict]:
    stages = (expect.stage,) if isinstance(expect.stage, str) else expect.stage
    return [f for f in view.failures if f["stage"] in stages and words_in(f["message"], expect.words)
            and f.get("series") == expect.series and (expect.series is not None or f["fatal"])]


def satisfied(expect: Expect, view: RequestView) -> bool:
    if isinstance(expect, Fails):
        return bool(matching_failures(view, expect))
    if isinstance(expect, Answers):
        failed = {f.get("series") for f in view.failures}
        return view.done and set(expect.series) <= set(view.results) and set(expect.failed) <= failed
    if isinstance(expect, DeadLetter):
        return not expect.sender_told or any(f["stage"] == "decode" for f in view.failures)
    if isinstance(expect, Skipped):
        return view.skipped >= 1
    raise TypeError(expect)


def final(expect: Expect, view: RequestView) -> bool:
    """Nothing more will come for this request: no point waiting for it (its test says what is wrong)."""
    return isinstance(expect, Fails | Answers) and view.done


@dataclass
class Sent:
    """What the corpus sent on the Kafka path and what came of it."""

    rids: dict[str, str] = field(default_factory=dict)  # case id → the request id (or key) to follow
    views: dict[str, RequestView] = field(default_factory=dict)  # request id → what the result topics say
    placed: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # poison case → (topic, partition, offset)
    dead_letters: dict[tuple[str, int, int], dict[str, str]] = field(default_factory=dict)  # → headers
    skipped_before: dict[str, float] = field(default_factory=dict)  # the gateway's counters before the poison
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # the services running the corpus
    seconds: float = 0.0
