"""The Prometheus metrics every stream service keeps (a registry of its own: one process, one service)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from timex_stream.runtime.produce_watch import ProduceWatch


class Metrics:
    """Prometheus metrics of one service (a registry of its own: one process, one service)."""

    def __init__(self, service: str, restarts: int = 0) -> None:
        self.registry = CollectorRegistry()
        Gauge("timex_service_restarts", "times `make up`'s supervisor started this service again",
              registry=self.registry).set(restarts)
        self.consumed = Counter("timex_records_consumed", "records consumed", ["topic"], registry=self.registry)
        self.produced = Counter("timex_records_produced", "records produced", ["topic"], registry=self.registry)
        self.failures = Counter("timex_failures", "failures published", ["stage"], registry=self.registry)
        self.dead_letters = Counter("timex_dead_letters", "undecodable records", ["topic"], registry=self.registry)
        self.seconds = Histogram("timex_processing_seconds", "time to process one record", registry=self.registry,
                                 buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300))
        self.produce = ProduceWatch(self.registry)  # writes the brokers refuse: a gauge and one line per episode
