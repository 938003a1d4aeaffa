"""The topic catalogue: the one list of topics that code, docker-compose and Strimzi are checked against.

Keys (built by `schemas.keys`, series names escaped): configs, best-models, failures, progress, requests by
request_id; predictions by request_id/series, so all units of a series meet in one validator partition;
datasets by request_id/series/unit, so the units of one series spread over every predictor (keyed by series,
a whole series, and a one-series request, would go to one predictor process: README, Architecture).
Datasets are not placed by a hash of the key but round-robin by unit index (`Topic.partition_of`), so
every predictor gets an even share of each model.

`series` is the claim check: a request's prepared series (in chunks) and its config are published there once,
all on the partition of the request id (`Topic.by_request`), and the units point at them by position
(`SeriesRef`: partition and offsets) instead of carrying them; predictors and the validator read them back
by position (`timex_stream.runtime.series_store`). Kept as long as `datasets`, so a replayed unit still finds them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from schemas.keys import series_key, unit_key

__all__ = ["BY_NAME", "CATALOGUE", "Topic", "series_key", "unit_key"]

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str  # what the key holds
    value: str | None  # Avro record name; None: raw bytes (dead letters)
    retention_ms: int
    doc: str
    cleanup_policy: str = "delete"
    by_unit_index: bool = False  # keys end in "/<unit index>"; records go round-robin by that index
    by_request: bool = False  # every record of a request on the partition of its (escaped) request id

    def partition_of(self, key: str) -> int | None:
        """The partition a record with `key` must go to; None: the producer's key hash decides.

        By unit index, a series' units go to consecutive partitions from a start of the series' own, so
        every partition gets the same number of units (±1 per series): the key hash gave one of two
        predictors up to 26 % more units than the other (98 vs 78 of a 4-series request).
        """
        if self.by_request:
            return zlib.crc32(key.partition("/")[0].encode()) % self.partitions
        if not self.by_unit_index:
            return None
        series, _, index = key.rpartition("/")  # series names are escaped: the last "/" is the index's
        return (zlib.crc32(series.encode()) + int(index)) % self.partitions

    @property
    def config(self) -> dict[str, str]:
        """Kafka topic configs, as given to AdminClient, docker-compose and Strimzi KafkaTopic."""
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}


# Partitions bound the parallelism of a consumer group: 4 lets two predictors (or four) share work.
CONFIGS = Topic("configs", 4, "request_id", "ForecastRequest", 90 * DAY_MS,
                "TIMEX configs to forecast (Avro ForecastRequest or plain JSON); kept 90 days for replay")
SERIES = Topic("series", 4, "request_id[/series/chunk]", "SeriesPart", 30 * DAY_MS,
               "each request's prepared series (chunked) and config, once; units point at them; kept as long "
               "as datasets", by_request=True)
DATASETS = Topic("datasets", 4, "request_id/series/unit", "Dataset", 30 * DAY_MS,
                 "one record per unit of predictor work, pointing at its series; kept 30 days for replay",
                 by_unit_index=True)
PREDICTIONS = Topic("predictions", 4, "request_id/series", "Prediction", 7 * DAY_MS,
                    "one record per unit result")
BEST_MODELS = Topic("best-models", 4, "request_id", "BestModel", 90 * DAY_MS,
                    "the answer per series: best model, forecast and comparison")
FAILURES = Topic("failures", 4, "request_id", "Failure", 90 * DAY_MS, "every error, in words a user can act on")
PROGRESS = Topic("progress", 4, "request_id", "Progress", 90 * DAY_MS,
                 "status of each request as it moves; kept as long as the answers, which need it to be complete")
# One small record per request (owner, title, where its config sits, when it began), compacted so the latest
# per id stays, deleted with the answers: readers seek the answer topics by time instead of scanning them.
REQUESTS = Topic("requests", 4, "request_id", "RequestIndex", 90 * DAY_MS,
                 "the request index: where each request is, so readers never scan the answer topics",
                 cleanup_policy="compact,delete")
# Live requests (forecasting.live): the latest status of each standing request, and its series' forecasts. A
# compacted topic keeps only the latest record per key: `forecasts` is "the forecast now", `forecast-history`
# (delete policy, every revision) answers "what did we forecast at time t".
STANDING = Topic("standing", 4, "request_id", "StandingRequest", 90 * DAY_MS,
                 "live requests that follow a source topic: config and status (active, stopped), latest per id",
                 cleanup_policy="compact")
FORECASTS = Topic("forecasts", 4, "request_id/series", "ForecastRevision", 90 * DAY_MS,
                  "the latest forecast revision of every live series", cleanup_policy="compact")
FORECAST_HISTORY = Topic("forecast-history", 4, "request_id/series", "ForecastRevision", 90 * DAY_MS,
                         "every forecast revision of every live series, in order (append-only)")
# The realised accuracy of each live series (forecasting.live.accuracy), the latest per series: what a dashboard
# or an alert reads without the forecasts themselves.
ACCURACY = Topic("accuracy", 4, "request_id/series", "Accuracy", 90 * DAY_MS,
                 "the realised accuracy of every live series (rolling error per horizon step), latest per series",
                 cleanup_policy="compact")
DEAD_LETTERS = Topic("dead-letters", 1, "source topic", None, 30 * DAY_MS,
                     "input records no service could decode, with the reason in headers")

CATALOGUE: tuple[Topic, ...] = (CONFIGS, SERIES, DATASETS, PREDICTIONS, BEST_MODELS, FAILURES, PROGRESS, REQUESTS,
                                STANDING, FORECASTS, FORECAST_HISTORY, ACCURACY, DEAD_LETTERS)
BY_NAME: dict[str, Topic] = {t.name: t for t in CATALOGUE}

