"""`failure`: an admin future's error read without raising it, so that no reference cycle keeps the frame (and
the AdminClient in it) alive for the gc to destroy later, perhaps after its broker is gone."""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import weakref

from confluent_kafka import KafkaError, KafkaException

from timex_stream.runtime.kafka import failure


class Client:
    """Stands for the AdminClient a caller's frame holds (only its lifetime matters here)."""


def _ended(read: str) -> weakref.ref[Client]:
    client = Client()
    futures = {"t": concurrent.futures.Future()}
    futures["t"].set_exception(KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS)))
    if read == "failure":
        assert isinstance(failure(futures["t"]), KafkaException)
    else:
        with contextlib.suppress(KafkaException):
            futures["t"].result()
    return weakref.ref(client)


def test_reading_the_error_leaves_no_cycle_holding_the_callers_client() -> None:
    gc.disable()
    try:
        assert _ended("failure")() is None  # freed by reference counting, at once
        raised = _ended("result")
        assert raised() is not None  # the pattern it replaces: only the gc would free it
    finally:
        gc.enable()
    gc.collect()
    assert raised() is None


def test_no_error_is_none() -> None:
    fut: concurrent.futures.Future[None] = concurrent.futures.Future()
    fut.set_result(None)
    assert failure(fut) is None
