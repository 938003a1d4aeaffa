"""Read the answers of a few requests by time, never from the beginning of the answer topics.

Every progress, best-models, failures and forecast-history record of a request is produced after its config
(whose Kafka timestamp the request index keeps), so a reader seeks each partition to that time
(`offsets_for_times`) and reads forward until the requests are done, plus a grace period for records still in
flight on other partitions, or until the end offsets the topics had when reading started (a live request is not
done before it is stopped: its revisions are read up to those ends). What it reads is the window of the
request's own life, whatever the topics hold before it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from confluent_kafka import TopicPartition

from timex_stream.runtime.history import read_to_end
from timex_stream.runtime.kafka import ASK_S, consumer, while_transient
from timex_stream.runtime.request_index import read_index
from timex_stream.runtime.request_view import TOPICS, RequestView, request_of

# The index keeps the broker's time of the config; a service on another host stamps its answers with its
# own clock, which may run a little behind: seek this much earlier.
LOOKBACK_MS = 60_000
# A request the index does not know yet was submitted a moment ago (the ingestion indexes a config once it
# has ingested it, before any record of it), or is no request at all (a record keyed by a made-up id): look
# this far back for it.
NOT_INDEXED_LOOKBACK_MS = 10 * 60_000
# Once every request is done, records of theirs may still sit on other partitions a little later.
GRACE_MS = 30_000


@dataclass
class ReadStats:
    """What a read cost: records read from the answer topics, whichever request they belong to."""

    records: int = 0


def start_times(bootstrap: str, request_ids: Iterable[str]) -> dict[str, int]:
    """When each request began, from the index; one not indexed yet began at most NOT_INDEXED_LOOKBACK_MS ago."""
    wanted = set(request_ids)
    index = read_index(bootstrap, wanted)
    recent = int(time.time() * 1000) - NOT_INDEXED_LOOKBACK_MS
    return {rid: index[rid]["configs_at"] if rid in index else recent for rid in wanted}


def seek_positions(bootstrap: str, start_ms: int, timeout: float = 30.0, group: str = "timex-lookup",
                   lookback_ms: int | None = None) -> tuple[list[TopicPartition], dict[tuple[str, int], int]]:
    """(each answer partition at its first offset at or after `start_ms` - lookback_ms, end offsets now).
    `group`: the prefix of the throw-away group ids (Kafka ACLs grant groups by prefix); `lookback_ms`:
    LOOKBACK_MS unless given (read when called, so a test can shorten it)."""
    lookback_ms = LOOKBACK_MS if lookback_ms is None else lookback_ms
    cons = consumer(bootstrap, f"{group}-{uuid.uuid4().hex[:8]}")
    ask = min(timeout, ASK_S)  # each query short, asked again while `timeout` lasts (see ASK_S)
    try:
        meta = while_transient(lambda: cons.list_topics(timeout=ask), timeout).topics
        tps = [TopicPartition(t, p, max(0, start_ms - lookback_ms)) for t in TOPICS for p in sorted(meta[t].partitions)]
        ends = {(tp.topic, tp.partition): while_transient(lambda tp=tp: cons.get_watermark_offsets(tp, timeout=ask),
                                                          timeout)[1] for tp in tps}
        found = while_transient(lambda: cons.offsets_for_times(tps, timeout=ask), timeout)
    finally:
        cons.close()
    # -1: no record at or after that time on the partition: start at its end.
    return ([TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else ends[(tp.topic, tp.partition)])
             for tp in found], ends)


def read_views(bootstrap: str, starts: dict[str, int], stats: ReadStats | None = None,
               idle_timeout: float = 30.0, into: dict[str, RequestView] | None = None,
               lock: AbstractContextManager[object] | None = None, group: str = "timex-lookup",
               lookback_ms: int | None = None) -> dict[str, RequestView]:
    """The views of the requests in `starts` (request id → when it began, epoch ms) as the answer topics
    hold them now, read from the earliest start; never waits for a request to finish. `into`: fold into
    these views (under `lock`: the gateway's consumer thread folds new records into them meanwhile)."""
    views = into if into is not None else {rid: RequestView(rid) for rid in starts}
    lock = lock or contextlib.nullcontext()
    if not starts:
        return views
    stats = stats if stats is not None else ReadStats()
    positions, ends = seek_positions(bootstrap, min(starts.values()), idle_timeout, group, lookback_ms)
    pending = {(tp.topic, tp.partition) for tp in positions if tp.offset < ends[(tp.topic, tp.partition)]}
    if not pending:
        return views
    cons = consumer(bootstrap, f"{group}-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True})
    try:
        cons.assign([tp for tp in positions if (tp.topic, tp.partition) in pending])
        horizon: int | None = None  # once every request is done: GRACE_MS after the last record of theirs
        last_seen = 0

        def past_horizon(stamp: int) -> bool:  # timestamps grow along a partition
            return horizon is not None and stamp > horizon

        for msg in read_to_end(cons, {tp: ends[tp] for tp in pending}, f"reading the answers of {sorted(starts)}",
                               idle_timeout, past_horizon):
            stats.records += 1
            rid = request_of(msg.topic(), msg.key())
            if rid not in starts:
                continue
            last_seen = max(last_seen, msg.timestamp()[1])
            with lock:
                views[rid].fold(msg.topic(), msg.value(), msg.timestamp()[1])
                if all(views[r].settled for r in starts):
                    horizon = last_seen + GRACE_MS
    finally:
        cons.close()
    return views
