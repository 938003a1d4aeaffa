"""Which service uses which topic, as data: the one place the ACLs (strimzi/), the services' own channels and the
deployment tests agree on.

A Faust service's declaration is checked by the service itself: `timex_stream.runtime.faust_app.create_app(service)`
takes it from `WIRING`, `raw_topic` refuses a topic it does not name, `send_record` one it does not produce, and
`run_worker` refuses to start when the app's agents or tables differ from it. The ingestion (confluent-kafka, no
Faust) consumes `INGESTION.subscribes` as `INGESTION.group` and its sender refuses a topic it does not produce. The
gateway (confluent-kafka too) reads `GATEWAY.consumes` and names its throw-away consumer groups after `GATEWAY.group`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from schemas.topics import (
    ACCURACY,
    BEST_MODELS,
    CATALOGUE,
    CONFIGS,
    DATASETS,
    DEAD_LETTERS,
    FAILURES,
    FORECAST_HISTORY,
    FORECASTS,
    PREDICTIONS,
    PROGRESS,
    REQUESTS,
    SERIES,
    STANDING,
    Topic,
)

__all__ = ["GATEWAY", "INGESTION", "LIVE", "PREDICTOR", "VALIDATOR", "WIRING", "Wiring"]


@dataclass(frozen=True)
class Wiring:
    """What one Kafka client does on Kafka; the ACLs it needs follow from this."""

    service: str
    subscribes: tuple[Topic, ...]  # consumed as the consumer group `group` (a Faust app: its agents' topics)
    produces: tuple[Topic, ...]
    # Read at a position by a consumer outside the group's subscription (the claim check: `SeriesStore`).
    reads: tuple[Topic, ...] = ()
    tables: tuple[str, ...] = ()  # tables: each has a changelog topic of the service's own
    describes: tuple[Topic, ...] = ()  # topics it only checks exist
    faust: bool = True  # a Faust app: app id = group id = prefix of its internal topics
    group_pattern: str = "literal"  # "prefix": group ids that start with `group` (one per process)

    @property
    def group(self) -> str:
        """The consumer group, and a Faust app's id (`create_app` names the app so)."""
        return f"timex-{self.service}"

    @cached_property
    def consumes(self) -> frozenset[str]:
        return frozenset(t.name for t in (*self.subscribes, *self.reads))

    @cached_property  # a set: send_record looks in it for every record
    def produced(self) -> frozenset[str]:
        return frozenset(t.name for t in self.produces)

    @cached_property
    def channels(self) -> frozenset[str]:
        """Every topic the service may open a channel on (`raw_topic`)."""
        return frozenset(t.name for t in (*self.subscribes, *self.produces))

    def changelog(self, table: str) -> str:
        return f"{self.group}-{table}-changelog"

    @property
    def internal(self) -> frozenset[str]:
        """The topics the service keeps for itself: its tables' changelogs, and a Faust app's assignor leader topic."""
        leader = {f"{self.group}-__assignor-__leader"} if self.faust else set()
        return frozenset({*leader, *(self.changelog(t) for t in self.tables)})


# Every stream service parks what it cannot decode on dead-letters (`timex_stream.runtime.faust_app.decoded`).
# A live request (a config with a source topic) is answered with its standing record; a small one is answered
# by the ingestion itself (timex_stream.runtime.fast_lane: best-models; its Predictions go to the validator
# should one not be whole), marked in a table so that a config delivered again is not answered twice. The
# ingestion is a confluent-kafka consumer, no Faust app (ingestion.service): its sends are checked against this
# declaration by its sender (timex_stream.runtime.async_producer.RequestSender).
INGESTION = Wiring("ingestion", subscribes=(CONFIGS,),
                   produces=(REQUESTS, SERIES, DATASETS, PREDICTIONS, BEST_MODELS, FAILURES, PROGRESS, STANDING,
                             DEAD_LETTERS),
                   tables=("answered",), faust=False)
PREDICTOR = Wiring("predictor", subscribes=(DATASETS,), reads=(SERIES,), produces=(PREDICTIONS, DEAD_LETTERS))
# The validator sends itself markers (deadline, forget) on predictions, final refits back to datasets, and a
# regressor's forecast to series for the series it is a regressor of.
VALIDATOR = Wiring("validator", subscribes=(PREDICTIONS,), reads=(SERIES,),
                   produces=(BEST_MODELS, FAILURES, PROGRESS, PREDICTIONS, DATASETS, SERIES, DEAD_LETTERS),
                   tables=("series-states",))
# The live service follows the standing requests (a table of them) and their answers; it reads each request's
# source topic with a consumer of its own (a user's topic, not in the catalogue: its Read ACL is the user's to
# grant), fans a ready series out as the ingestion does (and again to re-select a drifting one), and publishes
# the revisions and their realised accuracy.
LIVE = Wiring("live", subscribes=(STANDING, BEST_MODELS),
              produces=(SERIES, DATASETS, FAILURES, PROGRESS, FORECASTS, FORECAST_HISTORY, ACCURACY, DEAD_LETTERS),
              tables=("standing-requests",))
# The gateway tails every partition of the index and the answers (live revisions too) with group ids
# `timex-gateway-<random>` (no commits), reads a config at its position for a re-forecast, submits configs, and at
# start checks that the whole catalogue exists (a topic it cannot describe looks missing).
GATEWAY = Wiring("gateway", subscribes=(REQUESTS, PROGRESS, BEST_MODELS, FAILURES, FORECAST_HISTORY),
                 reads=(CONFIGS,),
                 produces=(CONFIGS, STANDING), describes=CATALOGUE, faust=False, group_pattern="prefix")

# The Kafka clients by service name. The webapp is none (it talks HTTP to the gateway); the CLI tools run as
# the operator, who is no KafkaUser of the deployment.
WIRING: dict[str, Wiring] = {w.service: w for w in (INGESTION, PREDICTOR, VALIDATOR, LIVE, GATEWAY)}
