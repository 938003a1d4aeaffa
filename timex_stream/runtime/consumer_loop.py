"""The intake of a stream service that is no Faust app (the ingestion): a confluent-kafka consumer's thread takes
records of one topic, at most `in_hand` at once, and hands each to the event loop, where `handle` runs; a record's
offset is committed once it and the records fetched before it on its partition are handled (at least once:
timex_stream.runtime.in_order). `handle` returns once everything the record produced is acknowledged.

The consumer is touched from its thread only: confluent-kafka's consumer is not thread-safe (an offset stored from
the event loop waited on the poll in progress). So the handlers leave the offsets to commit in `to_store`, and the
thread stores them before each poll; librdkafka commits what is stored every second, at a revocation and at the
stop. When the group gives or takes partitions, the thread waits (inside the poll, so nothing is handed out
meanwhile) for `on_assign` or `on_revoke` to run on the loop: a service reads its table's partitions back there.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from schemas import Topic
from timex_stream.runtime.in_order import InOrder
from timex_stream.runtime.kafka import consumer

log = logging.getLogger(__name__)
STOP_S = 30.0  # a stop, or a revocation, waits this long for the records in hand
# Committed every second; a killed process's partitions move after 10 s, as the Faust services'. A full hand stops
# the polls, so the group waits up to 10 minutes for one before it deems the process stuck (a big request's
# ingestion is bounded well under that by its limits).
SETTINGS = {"enable.auto.commit": True, "enable.auto.offset.store": False, "auto.commit.interval.ms": 1000,
            "session.timeout.ms": 10_000, "heartbeat.interval.ms": 2000, "max.poll.interval.ms": 600_000}
Partitions = Callable[[list[int]], Awaitable[None]]


class ConsumerLoop:
    def __init__(self, bootstrap: str, group: str, topic: Topic, in_hand: int,
                 handle: Callable[[Message], Awaitable[None]], on_assign: Partitions, on_revoke: Partitions) -> None:
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.handle, self.on_assign, self.on_revoke = handle, on_assign, on_revoke
        self.in_order = InOrder()
        self.room = threading.Semaphore(in_hand)
        self.assigned: list[int] = []
        self.to_store: dict[int, int] = {}  # partition → offset to commit, from the handlers to the thread
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # the thread takes nothing more
        self.handled = threading.Event()  # ... and commits and leaves once the records in hand are handled
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Take and handle records until `stop` is set; then finish those in hand, commit and leave the group."""
        self.loop = asyncio.get_running_loop()
        taking = threading.Thread(target=self._take, name=f"{self.topic.name}-consumer", daemon=True)
        taking.start()
        await stop.wait()
        log.info("stopping: %d records in hand", self.in_order.in_hand())
        self.stopping.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=STOP_S)
        self.handled.set()
        await asyncio.to_thread(taking.join, STOP_S)

    # --- the event loop -----------------------------------------------------------------------------------------

    def _start(self, msg: Message) -> None:
        task = self.loop.create_task(self._run_handle(msg))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_handle(self, msg: Message) -> None:
        try:
            await self.handle(msg)
        except Exception:  # the handler answers what it can; a bug must not stop the partition's commits
            log.exception("%s[%d]@%d: not handled", self.topic.name, msg.partition(), msg.offset())
        finally:
            commit = self.in_order.done(msg.partition(), msg.offset())
            if commit is not None:
                with self.lock:
                    self.to_store[msg.partition()] = commit
            self.room.release()

    # --- the consumer's thread ----------------------------------------------------------------------------------

    def _take(self) -> None:
        cons = consumer(self.bootstrap, self.group, **SETTINGS)
        cons.subscribe([self.topic.name], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked)
        try:
            while not self.stopping.is_set():
                self._store(cons)
                if not self.room.acquire(timeout=0.2):
                    continue
                msg = cons.poll(0.2)
                if msg is None or msg.error():
                    if msg is not None:
                        log.warning("%s: %s", self.topic.name, msg.error())
                    self.room.release()
                    continue
                self.in_order.taken(msg.partition(), msg.offset())
                self.loop.call_soon_threadsafe(self._start, msg)
            self.handled.wait(STOP_S)
            self._store(cons)
            self._commit(cons)
        finally:
            cons.close()

    def _assigned(self, cons: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        asyncio.run_coroutine_threadsafe(self.on_assign(numbers), self.loop).result()
        self.assigned = sorted(set(self.assigned) | set(numbers))

    def _revoked(self, cons: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        if not self.in_order.wait_handled(numbers, STOP_S):
            log.warning("%s partitions %s revoked with records still in hand: they come again", self.topic.name,
                        numbers)
        self._store(cons)
        self._commit(cons)
        self.in_order.drop(numbers)
        self.assigned = [p for p in self.assigned if p not in numbers]
        asyncio.run_coroutine_threadsafe(self.on_revoke(numbers), self.loop).result(STOP_S)

    def _store(self, cons: Consumer) -> None:
        with self.lock:
            offsets, self.to_store = self.to_store, {}
        if not offsets:
            return
        try:
            cons.store_offsets(offsets=[TopicPartition(self.topic.name, p, o) for p, o in offsets.items()])
        except KafkaException as exc:  # revoked meanwhile: its next owner reads from the last commit
            log.info("%s offsets %s not stored: %s", self.topic.name, offsets, exc)

    def _commit(self, cons: Consumer) -> None:
        try:
            cons.commit(asynchronous=False)
        except KafkaException as exc:  # nothing stored since the last commit, or the group moved on
            if "NO_OFFSET" not in str(exc):
                log.warning("committing %s offsets: %s", self.topic.name, exc)
