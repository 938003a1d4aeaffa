"""The live service's producer of revisions (`forecasts`, `forecast-history`) and their realised accuracy
(`accuracy`): a confluent-kafka (librdkafka, C) producer, where the other records (progress, failures, the
fan-out of a selection) go through the Faust app's aiokafka producer.

Why a second producer: a revision is the service's one record per observation (two, with its history copy), and
aiokafka's pure-Python batching, framing and send loop cost more CPU than the revision's own forecast
(bench/live.py, profiled); librdkafka does that work in C, in its own threads, and gathers the revisions of
`LINGER_MS` into one produce request per broker (fewer requests for the broker to serve too).

The same guarantees as the Faust producer: idempotent with acks=all (a retried send is not written twice),
and its order per partition kept across retries, so a series' revisions land in revision order; the same
partition per key (the catalogue's `partition_of`). `produce` never waits on the broker: the records are queued
and sent by librdkafka's threads; a thread of this module serves the delivery reports (an error is logged and
counted; that series' next revision supersedes it on `forecasts`, and a restart's recomputation writes it to
`forecast-history` only when it is after the last revision on `forecasts`). `flush` waits for
what is queued (a stopped request's last revisions, the service's shutdown). What a kill -9 loses from the
queue is what an earlier run did not write: live/published.py finds the last revision written, and the restart
writes the ones after it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from schemas import Topic, encode
from timex_stream.runtime.kafka import producer_config

log = logging.getLogger("live")

LINGER_MS = 5  # a batch's wait for more records: at most 200 produce requests a second per broker
QUEUE_FULL_WAIT_S = 0.1  # librdkafka's queue full (the broker slower than the revisions): serve it, then again
QUEUE_FULL_TRIES = 600  # a minute of a full queue: then the record is refused (an error, never a silent loss)


class RevisionProducer:
    def __init__(self, bootstrap: str, client_config: dict[str, str]) -> None:
        # No compression: records of a few hundred bytes on the local network; compressing costs this service and
        # the broker (which decompresses to validate a compacted topic's keys) more CPU than it saves.
        # Delivery reports of failures only, to one callback: a report per record would take the GIL once a record.
        self.producer = Producer(producer_config(bootstrap, **client_config, **{
            "linger.ms": LINGER_MS, "compression.type": "none", "delivery.report.only.error": True,
            "on_delivery": self._delivered}))
        self.failed = 0  # delivery reports with an error
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="live-revisions", daemon=True)
        self._thread.start()

    def send(self, topics: Sequence[Topic], key: str, record: dict[str, Any]) -> None:
        """One record to topics of one value schema, encoded once, each on the partition the catalogue gives
        its key. Queued: librdkafka sends it (in a batch) and retries it."""
        schema = topics[0].value
        assert schema is not None and all(t.value == schema for t in topics), "one encoding for one schema"
        value, raw_key = encode(schema, record), key.encode()
        for topic in topics:
            partition = topic.partition_of(key)
            placed: dict[str, Any] = {} if partition is None else {"partition": partition}
            for _ in range(QUEUE_FULL_TRIES):
                try:
                    self.producer.produce(topic.name, value, raw_key, **placed)
                    break
                except BufferError:
                    self.producer.poll(QUEUE_FULL_WAIT_S)
            else:
                raise BufferError(f"{topic.name}: the producer's queue stayed full for a minute")

    def flush(self, timeout: float = 30.0) -> int:
        """Wait until what is queued is acknowledged (at most `timeout` s); → the records still queued."""
        return self.producer.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        left = self.flush(timeout)
        if left:
            log.warning("%d revision record(s) not acknowledged at shutdown: the next start writes them", left)
        self._closing.set()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._closing.is_set():
            self.producer.poll(0.2)

    def _delivered(self, error: KafkaError | None, msg: Message) -> None:
        if error is not None:
            self.failed += 1
            log.error("a revision record to %s was not written: %s", msg.topic(), error)
