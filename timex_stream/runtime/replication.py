"""How many copies of each partition the cluster keeps, decided from its size.

One broker: one copy (as always: nothing to copy to). Three or more: three copies, and a write counts only once
two of them have it (`min.insync.replicas` 2 with `acks=all`), so one broker lost loses no acknowledged record
and stops no writer. Two brokers: two copies, one in sync suffices (a lost broker must not stop every write).
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient


@dataclass(frozen=True)
class Replication:
    factor: int  # replicas per partition
    min_insync: int  # replicas that must have a record before an acks=all write succeeds (a broker default)


def replication_for(brokers: int) -> Replication:
    if brokers >= 3:
        return Replication(3, 2)
    return Replication(max(brokers, 1), 1)


def cluster_replication(client: AdminClient, timeout: float = 30.0) -> Replication:
    """The replication for the cluster `client` talks to, from the brokers in its metadata."""
    return replication_for(len(client.list_topics(timeout=timeout).brokers))
