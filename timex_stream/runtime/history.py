"""Read what a topic holds between two times, then stop: the base of replay, `requests` and `results`.

Times are the records' Kafka timestamps. Each partition is read from the first offset at or after
`start` (`offsets_for_times`) until a record at or after `end`, or the end offset it had when reading
started, so a reader never waits for records that are still being produced.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from timex_stream.runtime.kafka import ASK_S, consumer, while_transient

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime | None = None) -> int:
    """`2026-11-24T07:00`, `2026-11-24`, `...+02:00`, `now`, or relative `-30m`, `-2h`, `-7d` → epoch ms.
    Times without an offset are UTC."""
    now = now or datetime.now(UTC)
    text = text.strip()
    match = _RELATIVE.match(text)
    if match:
        moment = now - timedelta(**{_UNITS[match[2]]: float(match[1])})
    elif text == "now":
        moment = now
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a time: use ISO 8601 (2026-11-24T07:00, 2026-11-24, "
                             "optionally with +02:00) or relative (-30m, -2h, -7d)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def format_ms(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_range(bootstrap: str, topic: str, start_ms: int | None = None, end_ms: int | None = None,
               idle_timeout: float = 30.0, partitions: Collection[int] | None = None) -> Iterator[Message]:
    """Every record of `topic` (of its `partitions`; None: all) with start_ms <= timestamp < end_ms (None: open),
    partition by partition in offset order; stops at the end offsets the topic had when called."""
    cons = consumer(bootstrap, f"timex-history-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True})
    ask = min(idle_timeout, ASK_S)  # each query short, asked again while `idle_timeout` lasts (see ASK_S)
    try:
        if partitions is None:
            partitions = while_transient(lambda: cons.list_topics(topic, timeout=ask), idle_timeout
                                         ).topics[topic].partitions
        partitions = sorted(partitions)
        ends = {p: while_transient(lambda p=p: cons.get_watermark_offsets(TopicPartition(topic, p), timeout=ask),
                                   idle_timeout)
                for p in partitions}
        if start_ms is None:
            starts = {p: low for p, (low, _) in ends.items()}
        else:
            found = while_transient(lambda: cons.offsets_for_times(
                [TopicPartition(topic, p, start_ms) for p in partitions], timeout=ask), idle_timeout)
            # -1: no record at or after start_ms in that partition.
            starts = {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition][1] for tp in found}
        pending = {p for p in partitions if starts[p] < ends[p][1]}
        if not pending:
            return
        cons.assign([TopicPartition(topic, p, starts[p]) for p in sorted(pending)])
        # timestamps grow along a partition (one clock): the first at or after end_ms ends it
        past_end = (lambda stamp: False) if end_ms is None else (lambda stamp: stamp >= end_ms)
        for msg in read_to_end(cons, {(topic, p): ends[p][1] for p in pending}, f"reading '{topic}'", idle_timeout,
                               past_end):
            if start_ms is None or msg.timestamp()[1] >= start_ms:
                yield msg
    finally:
        cons.close()


def read_to_end(cons: Consumer, ends: dict[tuple[str, int], int], what: str, idle_timeout: float = 30.0,
                past: Callable[[int], bool] = lambda stamp: False) -> Iterator[Message]:
    """The records of `cons`'s assigned partitions (topic, partition) in `ends`, each up to its end offset
    there (exclusive) or up to its first record whose timestamp is `past` (not yielded: `past` may change its
    mind as it goes, e.g. once a reader has what it wants). `cons` needs enable.partition.eof; a partition
    that gives nothing for `idle_timeout` seconds raises TimeoutError naming `what`."""
    pending = set(ends)
    last_progress = time.monotonic()
    while pending:
        if time.monotonic() - last_progress > idle_timeout:
            raise TimeoutError(f"{what}: no record for {idle_timeout:.0f} s from partitions {sorted(pending)}")
        for msg in cons.consume(500, 0.5):
            tp = (msg.topic(), msg.partition())
            if tp not in pending:
                continue
            last_progress = time.monotonic()
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(tp)
                continue
            if past(msg.timestamp()[1]):
                pending.discard(tp)
                continue
            if msg.offset() >= ends[tp] - 1:
                pending.discard(tp)
            yield msg
