"""Whether the live service takes on one more standing request: TIMEX_LIVE_MAX_REQUESTS active ones in all and
TIMEX_LIVE_MAX_REQUESTS_PER_USER per owner. The owner is the standing record's (the gateway's authenticated
user); requests sent straight to Kafka have none and count under one owner, `kafka`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from timex_stream.runtime.settings import Settings

KAFKA_OWNER = "kafka"


def owner_of(owner: str | None) -> str:
    return owner or KAFKA_OWNER


def admit(owner: str | None, active: Iterable[Mapping[str, Any]], settings: Settings) -> str | None:
    """None when a new request of `owner` may be followed beside the `active` standing records, else why not
    (the `limits` failure's message, naming the variable)."""
    records = list(active)
    if len(records) >= settings.live_max_requests:
        return (f"{len(records):,} standing requests are active; at most {settings.live_max_requests:,} "
                "(TIMEX_LIVE_MAX_REQUESTS): stop one first")
    who = owner_of(owner)
    mine = sum(1 for r in records if owner_of(r.get("owner")) == who)
    if mine >= settings.live_max_requests_per_user:
        return (f"{who} has {mine:,} active standing request(s); at most {settings.live_max_requests_per_user:,} "
                "per user (TIMEX_LIVE_MAX_REQUESTS_PER_USER): stop one first")
    return None
