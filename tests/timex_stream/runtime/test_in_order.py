"""`InOrder`: a partition is committed only up to its first config still in hand, whatever order they finish in."""

from __future__ import annotations

import threading

from timex_stream.runtime.in_order import InOrder


def test_offsets_commit_in_fetch_order_whatever_order_the_records_finish_in() -> None:
    order = InOrder()
    for offset in (10, 11, 12):
        order.taken(0, offset)
    order.taken(1, 5)
    assert order.done(0, 11) is None  # 10 is still in hand
    assert order.done(1, 5) == 6  # another partition does not wait for it
    assert order.done(0, 10) == 12  # 10 and 11 are handled: read from 12 next
    assert order.in_hand() == 1 and order.in_hand([1]) == 0
    assert order.done(0, 12) == 13 and order.in_hand() == 0


def test_a_record_of_a_revoked_partition_commits_nothing() -> None:
    order = InOrder()
    order.taken(3, 1)
    order.drop([3])
    assert order.done(3, 1) is None and order.in_hand() == 0


def test_waiting_for_a_partition_ends_when_its_records_are_handled_or_the_time_is_up() -> None:
    order = InOrder()
    order.taken(0, 1)
    order.taken(1, 1)
    assert not order.wait_handled([0], timeout=0.05)
    threading.Timer(0.05, order.done, (0, 1)).start()
    assert order.wait_handled([0], timeout=5)  # partition 1's record does not hold it
    assert order.in_hand() == 1
