"""`while_transient`: a reader asks again while a (re)starting broker answers with a transient error."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from timex_stream.runtime.kafka import while_transient


def failing(codes: list[int], answer: str = "ok"):  # noqa: ANN201 - a test double for one Kafka call
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(codes):
            raise KafkaException(KafkaError(codes[len(calls) - 1]))
        return answer

    return call, calls


def test_asks_again_while_the_broker_is_not_leader_yet() -> None:
    call, calls = failing([KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError._TRANSPORT])
    assert while_transient(call, timeout=10) == "ok" and len(calls) == 3


def test_a_lasting_error_is_not_asked_again() -> None:
    call, calls = failing([KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaException):
        while_transient(call, timeout=10)
    assert len(calls) == 1


def test_gives_up_after_the_timeout() -> None:
    call, calls = failing([KafkaError.NOT_LEADER_FOR_PARTITION] * 100)
    with pytest.raises(KafkaException):
        while_transient(call, timeout=1)
    assert 2 <= len(calls) <= 5
