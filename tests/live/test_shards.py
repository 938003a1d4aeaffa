"""Live instances share the standing requests by partition (live/shards.py): a request's re-selection answers
come to the partition of the request itself, whatever its id, and the ids parse back."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from live.shards import owns, partition_of, reselection_key
from schemas.keys import reselection_id, reselection_of
from schemas.topics import BEST_MODELS, STANDING


def test_a_reselection_lands_on_its_standing_requests_partition_and_names_it() -> None:
    moved = 0
    for i in range(200):
        rid = f"shop:live-{i}"
        for at in (50, 120, 10_000):
            key = reselection_key(rid, at)
            assert partition_of(key, BEST_MODELS.partitions) == partition_of(rid, STANDING.partitions)
            assert reselection_of(key) == (rid, at)
            assert key == reselection_key(rid, at)  # derived from the inputs: a restart asks under the same id
            moved += key != reselection_id(rid, at)
    assert moved > 0  # some needed a salt (about 3 in 4)


def test_the_partition_is_the_producers_key_hash() -> None:
    partitions = list(range(STANDING.partitions))
    for i in range(100):
        key = f"user-{i}:req"
        assert partition_of(key) == DefaultPartitioner()(key.encode(), partitions, partitions)
    assert owns("a", {partition_of("a")}) and not owns("a", set(partitions) - {partition_of("a")})


def test_a_salt_that_is_not_a_number_is_no_reselection() -> None:
    assert reselection_of("r~reselect-12.x") is None and reselection_of("r~reselect-12.") is None
    assert reselection_of("r~reselect-12.3") == ("r", 12)
