"""The live service's Prometheus metrics of realised accuracy and re-selection (forecasting.live.accuracy,
forecasting.live.reselect), with bounded label sets: a per-series gauge for the first `SERIES_LABEL_CAP`
series only (the others are in the unlabelled aggregates), a re-selection counter by reason and outcome.
"""

from __future__ import annotations

import math
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SERIES_LABEL_CAP = 50  # (request, series) label pairs at most: a gauge per series past it would grow unbounded
OUTCOMES = ("switched", "kept", "failed")


class AccuracyMetrics:
    def __init__(self, registry: CollectorRegistry, cap: int = SERIES_LABEL_CAP) -> None:
        self.cap = cap
        self.rolling = Gauge("timex_live_rolling_error", f"rolling main-estimator error of a live series (the first "
                             f"{cap} series followed; the others only in the aggregates)", ["request_id", "series"],
                             registry=registry)
        self.ratio = Histogram("timex_live_error_ratio", "rolling error / validation error at each revision",
                               buckets=(0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, math.inf), registry=registry)
        self.over = Gauge("timex_live_series_over_threshold", "live series whose rolling error is above their "
                          "re-selection threshold now", registry=registry)
        self.reselections = Counter("timex_live_reselections", "re-selections of live series' models",
                                    ["reason", "outcome"], registry=registry)
        self._labelled: set[tuple[str, str]] = set()
        self._over: set[tuple[str, str]] = set()

    def observe(self, request_id: str, revision: dict[str, Any]) -> None:
        """A revision was published: its accuracy into the gauges."""
        accuracy = revision.get("accuracy")
        if not accuracy:
            return
        key = (request_id, revision["series"])
        error, validation, limit = accuracy["error"], accuracy["validation_error"], accuracy["threshold"]
        if key in self._labelled or len(self._labelled) < self.cap:
            self._labelled.add(key)
            self.rolling.labels(*key).set(math.nan if error is None else error)
        if error is not None and validation:
            self.ratio.observe(error / validation)
        (self._over.add if error is not None and limit is not None and error > limit else self._over.discard)(key)
        self.over.set(len(self._over))

    def reselected(self, reason: str, outcome: str) -> None:
        self.reselections.labels(reason, outcome).inc()

    def forget(self, request_id: str) -> None:
        """A stopped request: its series leave the gauges (and free their label slots)."""
        for key in [k for k in self._labelled if k[0] == request_id]:
            self._labelled.discard(key)
            self.rolling.remove(*key)
        self._over = {k for k in self._over if k[0] != request_id}
        self.over.set(len(self._over))
