"""faust.App without four ways faust-streaming 0.15.3 loses records (the first two still open upstream).

1. Recovery after an assignment (https://github.com/faust-streaming/faust/issues/596). Faust resumes the
   flow into the stream queues to read the table changelogs, resumes the stream partitions, seeks them to
   their committed offsets, then resumes the flow once more. Each resume clears every stream queue, as if
   the flow had been suspended and the queues held records of the previous assignment; here it was
   running, so the second resume dropped live records fetched after the seek, which nothing fetches again.
2. Committing past a record still in flight (https://github.com/faust-streaming/faust/issues/606). With
   agent concurrency > 1 later records can finish first; Faust's check of the acked offsets lets one
   missing offset at the head pass (or any, on a partition with nothing committed yet), so it committed
   past the record still being processed, and a kill -9 then lost it for good.
3. Records dropped on a partition with nothing committed. Faust drops fetched records in several places (flow
   suspended, partition paused, generation changed) and counts on `perform_seek` (seek to the committed
   offsets) to fetch them again; aiokafka's `seek_to_committed` leaves a partition with no committed offset
   where it is, past the dropped records (Faust assumed such partitions fall back to the start of the log:
   https://github.com/robinhood/faust/pull/70; related: https://github.com/faust-streaming/faust/issues/216).
   So a record produced while a member started, on a partition the group never committed, could be lost:
   a live standing request submitted while the live service restarted was never followed. Fixed by seeking
   such partitions to their beginning (the apps' `consumer_auto_offset_reset` is "earliest").
4. Committing past a record in flight at a graceful stop. Faust keeps the records in flight in a WeakSet
   (`Consumer._unacked_messages`); a stop cancels the agents, and a record whose event nothing references any
   more drops out of it, so the last commit on the way out passed it (a SIGTERM of a predictor lost the unit it
   was running). Fixed by holding them in a set until acked or revoked.

Measured before the fixes (tests/timex_stream/runtime/test_faust_delivery.py): a table-backed relay lost 1, 184
and 444 of 2,000 records in three runs of members joining, leaving and dying, and a restarted validator
missed units of most requests, sometimes every unit of a series, which was then never answered; a relay
working on two records at once lost the slow one in flight in 2 of 2 runs with a kill -9. None since.
(3): a relay restarted while records arrived on never-committed partitions lost both in 1 of 8 restarts.
(4): a relay stopped by SIGTERM while a slow record was in flight behind finished ones lost it in 3 of 3 runs.

The fixes override Faust internals (`FlowControlEvent.resume`, `Consumer._new_offset`, `_acked`,
`_unacked_messages`, `on_partitions_revoked`, `AIOKafkaConsumerThread.seek_to_committed` and
`verify_event_path`), so they hold for the faust-streaming they were written against only: the app refuses to
start on any other version (`check_faust_version`) rather than silently lose records again.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableSet
from importlib.metadata import version
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from timex_stream.runtime.pinned import require_version

WRITTEN_FOR = "0.15.3"  # the faust-streaming the two fixes below were written and measured against


def check_faust_version(installed: str | None = None) -> None:
    """Raise unless the installed faust-streaming is the one these fixes were written for."""
    installed = installed or version("faust-streaming")
    require_version("faust-streaming", installed, WRITTEN_FOR, "faust_delivery.py",
                    f"check whether faust-streaming issues #596 and #606 are fixed in {installed} and whether the "
                    f"overridden internals (FlowControlEvent.resume, Consumer._new_offset, "
                    f"AIOKafkaConsumerThread.seek_to_committed) still match, run "
                    f"tests/timex_stream/runtime/test_faust_delivery.py, then update WRITTEN_FOR (or drop the fixes)")


class _FlowControl(FlowControlEvent):
    def resume(self) -> None:
        if self.is_active():
            return  # (1) already flowing: the queues hold live records, not stale ones
        super().resume()


class AtLeastOnceConsumerThread(AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[Any, int | None]:
        committed = await super().seek_to_committed()
        # (3) aiokafka seeks only partitions with a committed offset (> 0); the others restart at the
        # beginning, as a new assignment of them would, so that what Faust dropped is fetched again.
        never = [tp for tp, offset in committed.items() if not offset]
        if never and self.app.conf.consumer_auto_offset_reset == "earliest":
            await self.seek_to_beginning(*never)
        return committed

    def verify_event_path(self, now: float, tp: TP) -> None:
        # (3) A partition seeked to its beginning has no position until its next fetch, and Faust's livelock
        # check reads it (aiokafka asserts one: the AssertionError crashed a predictor's consumer). Nothing has
        # flowed on it yet, so there is no event path to verify.
        subscription = self._ensure_consumer()._fetcher._subscriptions.subscription
        state = subscription.assignment.state_value(TopicPartition(tp.topic, tp.partition)) if subscription else None
        if state is not None and not state.has_valid_position:
            return None
        return super().verify_event_path(now, tp)


class AtLeastOnceConsumer(AIOKafkaConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (4) Faust tracks the records in flight in a WeakSet: once a stop has cancelled the agent working on
        # one and nothing references its event, it drops out, and the last commit on the way out went past it.
        # Held here until acked (`_new_offset` drops the acked) or their partition is revoked.
        self._unacked_messages: MutableSet[Any] = set()

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return AtLeastOnceConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        await super().on_partitions_revoked(revoked)
        # (4) a record of a revoked partition is the next owner's to process (from the committed offset)
        self._unacked_messages -= {m for m in self._unacked_messages if m.tp in revoked}

    def _new_offset(self, tp: TP) -> int | None:
        # (4) What no longer holds anything back: an acked record (Faust's ack keeps those below the commit), and
        # one Faust dropped from a queue and fetched again (its offset acked by the new copy, or committed).
        committed, acked_index = self._committed_offset, self._acked_index
        self._unacked_messages -= {m for m in self._unacked_messages if m.acked or m.offset in acked_index.get(
            m.tp, ()) or (committed.get(m.tp) is not None and m.offset < committed[m.tp])}
        # (2) Offer Faust only the acked offsets below the first record still in flight on `tp`.
        in_flight = [m.offset for m in list(self._unacked_messages) if m.tp == tp]
        if not in_flight:
            return super()._new_offset(tp)
        head, acked = min(in_flight), self._acked[tp]
        later = [o for o in acked if o > head]
        acked[:] = [o for o in acked if o < head]
        try:
            return super()._new_offset(tp) if acked else None
        finally:
            acked.extend(later)


class AtLeastOnceApp(faust.App):
    consumer_class: type[AtLeastOnceConsumer] = AtLeastOnceConsumer  # a subclass may add to it

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_faust_version()  # at start: before any consumer could run with fixes that no longer fit
        super().__init__(*args, **kwargs)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return _FlowControl(loop=self.loop)

    def _new_consumer(self) -> Any:
        self.transport.Consumer = self.consumer_class  # this app's transport only
        return super()._new_consumer()
