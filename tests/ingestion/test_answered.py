"""The ingestion's markers of configs answered in place (`ingestion.answered`), on a dict as the table: a request
id answered, or in hand, is skipped, markers are forgotten once old and passed, never the one a
redelivery still needs, and the index comes back from the table after a recovery."""

from __future__ import annotations

from ingestion.answered import Answered
from timex_stream.runtime.records import Position

FORGET_S = 60.0
MINUTE = 60_000


def at(partition: int, offset: int) -> Position:
    return Position(partition, offset, 0)


def test_a_request_answered_in_place_is_seen_again_whatever_its_position() -> None:
    answered = Answered({}, FORGET_S)
    answered.mark("r1", at(2, 10), now=0)
    assert answered.seen("r1")  # delivered again, or the same id sent again: the validator's rule
    assert not answered.seen("r2")


def test_a_second_delivery_of_a_config_in_hand_is_not_handled_and_one_answered_never_again() -> None:
    answered = Answered({}, FORGET_S)
    assert answered.claim("r1") and not answered.claim("r1")  # fetched again while the first copy is handled
    assert answered.claim("r2")  # another request is not held up
    answered.release("r1")  # handled without an answer in place (its Datasets went to the predictors)
    assert answered.claim("r1")
    answered.mark("r1", at(0, 5), now=0)
    answered.release("r1")
    assert not answered.claim("r1") and answered.in_hand == {"r2"}


def test_markers_are_forgotten_once_older_than_the_grace_window_and_passed_on_their_partition() -> None:
    table: dict = {}
    answered = Answered(table, FORGET_S)
    for i in range(3):
        answered.mark(f"r{i}", at(0, i), now=i * 1000)
    answered.mark("other", at(1, 0), now=0)
    assert answered.forget(at(0, 3), now=MINUTE) == 0  # none older than a minute yet
    assert answered.forget(at(0, 3), now=MINUTE + 1500) == 2  # r0 and r1 are
    assert set(table) == {"r2", "other"}  # another partition's markers wait for an event of theirs
    # A redelivery from offset 2 on: the marker it needs is not forgotten by an event before it.
    assert answered.forget(at(0, 2), now=10 * MINUTE) == 0 and answered.seen("r2")
    assert answered.forget(at(0, 3), now=10 * MINUTE) == 1 and set(table) == {"other"}


def test_a_marker_written_again_for_a_later_config_is_not_forgotten_with_the_first() -> None:
    table: dict = {}
    answered = Answered(table, FORGET_S)
    answered.mark("r1", at(0, 1), now=0)
    answered.mark("r1", at(0, 5), now=50_000)  # the same id sent again
    assert answered.forget(at(0, 6), now=MINUTE + 1) == 0 and answered.seen("r1")
    assert answered.forget(at(0, 6), now=2 * MINUTE) == 1 and table == {}


def test_the_index_comes_back_from_the_table_after_a_recovery() -> None:
    table: dict = {}
    Answered(table, FORGET_S).mark("r1", at(3, 7), now=0)
    recovered = Answered(table, FORGET_S)  # a restart: the table came back from its changelog
    recovered.recover()
    assert recovered.seen("r1")
    assert recovered.forget(at(3, 8), now=2 * MINUTE) == 1 and table == {}
