"""Live service instances share the standing requests: each follows those on the partitions of `standing` the
Faust group gave it (best-models, keyed by request id and with as many partitions, is assigned with it:
Faust assigns co-partitioned topics together), so the revising of several requests spreads over processes.

A request is followed by the instance that holds its `standing` partition (`owns`); a follower whose partition
went to another instance is stopped quietly, and that instance starts it again (a restart: the same revisions,
those already written are not written again). A re-selection's answer must come to the same instance: its id
(`reselection_key`) carries the smallest salt that puts it on its standing request's partition of
best-models (derived from the inputs: a restart and a replay ask under the same id).
"""

from __future__ import annotations

from collections.abc import Collection

from aiokafka.partitioner import murmur2

from schemas.keys import reselection_id
from schemas.topics import BEST_MODELS, STANDING

assert STANDING.partitions == BEST_MODELS.partitions, "a request's standing record and answers co-partitioned"
MAX_SALT = 10_000  # the chance that none up to it fits is (3/4)^10,000


def partition_of(key: str, partitions: int = STANDING.partitions) -> int:
    """The partition the producers' key hash gives `key` (murmur2, as Java, aiokafka and ours configure)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def owns(request_id: str, active: Collection[int]) -> bool:
    """Whether this instance follows the request: its standing partition is one of `active`."""
    return partition_of(request_id) in active


def reselection_key(request_id: str, triggered_at: int) -> str:
    """The re-selection's request id, on the same best-models partition as its standing request."""
    want = partition_of(request_id, BEST_MODELS.partitions)
    for salt in range(MAX_SALT):
        key = reselection_id(request_id, triggered_at, salt)
        if partition_of(key, BEST_MODELS.partitions) == want:
            return key
    raise AssertionError("no salt puts the re-selection on its request's partition")  # (3/4)^10,000
