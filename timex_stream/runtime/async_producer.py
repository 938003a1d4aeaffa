"""The producer of a stream service that is no Faust app (the ingestion): aiokafka's, set up as the Faust services'
is (timex_stream.runtime.faust_app), and `RequestSender`, the fan-out's `Sender` for one request over it.

aiokafka, not confluent-kafka, because aiokafka sends every partition's batch bound for a broker in one produce
request, and librdkafka one request per partition (https://github.com/confluentinc/librdkafka/issues/1700): a
trivial request's answer (six records on four topics) went out in four produce requests with it, the broker's CPU
2.55 -> 3.13 ms a request and the readers' fetches woken four times (measured with bench/request_cost.py).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from schemas import Topic, encode
from schemas.topics import BEST_MODELS, DATASETS, FAILURES
from schemas.wiring import Wiring
from timex_stream.runtime.metrics import Metrics
from timex_stream.runtime.settings import Settings
from timex_stream.runtime.silent_broker import bound_producer, check_aiokafka_version

if TYPE_CHECKING:  # fan_out's planning imports the core: the sender needs only its type
    from timex_stream.runtime.fan_out import Landed

log = logging.getLogger(__name__)
# The Faust services' producers use these too (faust_app.create_app, which says why): a record waits up to 1 ms for
# the records its request sends next; metadata at most 5 s old. A batch lives up to Faust's 20 minutes (a long
# refusal makes the service wait, nothing is dropped); silent_broker.py bounds what a silent broker costs.
LINGER_MS = 1
BATCH_LIFETIME_MS = 1_200_000
METADATA_MAX_AGE_MS = 5000
# The aiokafka producers' (the ingestion's and the Faust apps'; the confluent-kafka ones set the same in
# kafka.producer_config): a send retried after a leader change is not written twice.
GUARANTEES: dict[str, Any] = {"acks": "all", "enable_idempotence": True}


def aiokafka_producer(bootstrap: str, settings: Settings) -> AIOKafkaProducer:
    """Idempotent, `acks=all`, uncompressed (as every producer of ours: timex_stream.runtime.kafka.producer_config)."""
    check_aiokafka_version()  # silent_broker.py sets aiokafka internals written for one version
    security: dict[str, Any] = {}
    if settings.kafka_security_protocol == "SASL_SSL":
        security = {"security_protocol": "SASL_SSL", "sasl_mechanism": settings.kafka_sasl_mechanism or "SCRAM-SHA-512",
                    "sasl_plain_username": settings.kafka_sasl_username,
                    "sasl_plain_password": settings.kafka_sasl_password,
                    "ssl_context": ssl.create_default_context(cafile=settings.kafka_ssl_ca_location)}
    made = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=LINGER_MS, request_timeout_ms=BATCH_LIFETIME_MS,
                            metadata_max_age_ms=METADATA_MAX_AGE_MS, **GUARANTEES, **security)
    bound_producer(made.client)  # a broker gone silent costs seconds, not its silence (silent_broker.py)
    return made


class RequestSender:
    """The fan-out's `Sender` (timex_stream.runtime.fan_out) for one request, within what the service's declaration
    produces (schemas.wiring); keeps the futures of everything the request sent (its offset is committed once they are
    acknowledged: timex_stream.runtime.in_order) and counts the failures and answers sent."""

    def __init__(self, sink: AIOKafkaProducer, wiring: Wiring, metrics: Metrics) -> None:
        self.sink, self.wiring, self.metrics = sink, wiring, metrics
        self.sent: list[asyncio.Future[Any]] = []

    async def send(self, topic: Topic, key: str, record: dict[str, Any]) -> asyncio.Future[Any]:
        assert topic.value is not None, f"{topic.name} carries raw bytes"
        return await self.send_raw(topic, key.encode(), encode(topic.value, record), topic.partition_of(key),
                                   counted=record.get("stage") if topic == FAILURES else None)

    async def send_raw(self, topic: Topic, key: bytes, value: bytes | None, partition: int | None = None,
                       headers: dict[str, bytes] | None = None, counted: str | None = None) -> asyncio.Future[Any]:
        if topic.name not in self.wiring.produced:
            raise RuntimeError(f"{self.wiring.service} sends to {topic.name!r}, which schemas.wiring does not "
                               "declare it produces")
        sent = await self.sink.send(topic.name, value=value, key=key, partition=partition,
                                    headers=list(headers.items()) if headers else None)
        future = self.metrics.produce.track(sent)  # a write the brokers refuse for long is said once
        self.sent.append(future)
        if topic == FAILURES:
            self.metrics.failures.labels(counted or "unknown").inc()
        elif topic in (DATASETS, BEST_MODELS):
            self.metrics.produced.labels(topic.name).inc()
        return future

    async def landed(self, handles: Sequence[asyncio.Future[Any]]) -> list[Landed]:
        return [(md.partition, md.offset) for md in await asyncio.gather(*handles)]

    async def acknowledged(self) -> list[BaseException]:
        """Wait for every record sent so far; → the errors of those the broker never took."""
        done = await asyncio.gather(*self.sent, return_exceptions=True)
        return [d for d in done if isinstance(d, BaseException)]
