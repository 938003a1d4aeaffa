"""Read what a topic holds between two times, then stop: the base of replay, `requests` and `results`.

Times are the records' Kafka timestamps. Each partition is read from the first offset at or after
`start` (`offsets_for_times`) until a record at or after `end`, or the end offset it had when reading
started, so a reader never waits for records that are still being produced.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaError, Message, TopicPartition

from timex_stream.kafka import consumer, while_transient

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
               idle_timeout: float = 30.0) -> Iterator[Message]:
    """Every record of `topic` with start_ms <= timestamp < end_ms (None: open), partition by partition
    in offset order; stops at the end offsets the topic had when called."""
    cons = consumer(bootstrap, f"timex-history-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True})
    try:
        partitions = sorted(while_transient(lambda: cons.list_topics(topic, timeout=idle_timeout),
                                            idle_timeout).topics[topic].partitions)
        ends = {p: while_transient(lambda p=p: cons.get_watermark_offsets(TopicPartition(topic, p),
                                                                          timeout=idle_timeout), idle_timeout)
                for p in partitions}
        if start_ms is None:
            starts = {p: low for p, (low, _) in ends.items()}
        else:
            found = while_transient(lambda: cons.offsets_for_times(
                [TopicPartition(topic, p, start_ms) for p in partitions], timeout=idle_timeout), idle_timeout)
            # -1: no record at or after start_ms in that partition.
            starts = {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition][1] for tp in found}
        pending = {p for p in partitions if starts[p] < ends[p][1]}
        if not pending:
            return
        cons.assign([TopicPartition(topic, p, starts[p]) for p in sorted(pending)])
        last_progress = time.monotonic()
        while pending:
            if time.monotonic() - last_progress > idle_timeout:
                raise TimeoutError(f"reading '{topic}': no record for {idle_timeout:.0f} s from partitions "
                                   f"{sorted(pending)}")
            for msg in cons.consume(500, 0.5):
                p = msg.partition()
                if p not in pending:
                    continue
                last_progress = time.monotonic()
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(p)
                    continue
                stamp = msg.timestamp()[1]
                if end_ms is not None and stamp >= end_ms:  # timestamps grow along a partition (one clock)
                    pending.discard(p)
                    continue
                if msg.offset() >= ends[p][1] - 1:
                    pending.discard(p)
                if start_ms is None or stamp >= start_ms:
                    yield msg
    finally:
        cons.close()
