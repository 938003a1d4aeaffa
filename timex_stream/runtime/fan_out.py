"""Fan-out: one request's prepared series → what to publish (an `Outcome`), and the one sequence that
publishes it, used by the ingestion (a Faust agent) and by `replay --topic datasets` (a confluent-kafka
producer) alike.

`fan_out` is pure: it checks the request's limits, plans every series' units and keeps the SeriesParts
(each series and the config, stored once) and the records around them. `publish` carries an Outcome out
in the order readers rely on: the request's index entry first (readers find the request by it), then
"accepted" and the SeriesParts, then the units, built from where the SeriesParts landed (the claim
check), then the failures and "ingested". A `Sender` is how a caller reaches Kafka. A request the fast lane
takes (`Outcome.in_place`, timex_stream.runtime.fast_lane) has its units answered by the caller instead of
sending the Datasets, while its SeriesParts are on their way to the broker, and that answer goes last; if that
fails, the Datasets go. Its SeriesParts go first, its index entry and "accepted" after its units ran (the
records a reader follows then leave in one produce request, and wake its fetch once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd
from confluent_kafka import KafkaException, Producer

from forecasting.config import ParsedConfig, TimexConfig
from forecasting.historical import first_known, plan_all
from forecasting.historical_multivariate import add_steps, regressors_by_step
from forecasting.limits import RequestLimits, check_config, check_data, describe
from forecasting.regressors import AdditionalRegressors
from forecasting.units import UnitSpec, batches
from forecasting.xcorr import request_xcorr
from schemas import Topic
from schemas.topics import DATASETS, FAILURES, PROGRESS, REQUESTS, SERIES, STANDING
from timex_stream.runtime.kafka import send
from timex_stream.runtime.records import dataset, failure, progress
from timex_stream.runtime.series_store import config_part, parts, regressor_parts, series_ref

Landed = tuple[int, int]  # (partition, offset) where the broker stored a record


@dataclass
class Planned:
    """One series' units, waiting for where its SeriesParts land."""

    name: str
    units: list[UnitSpec]
    parts: int  # how many SeriesParts (chunks) it has in `Outcome.stored`
    points: int
    regressors: list[str] = field(default_factory=list)  # keys of its additional regressors in `Outcome.columns`
    historical_from: int = 0  # points known at the first historical step (0: none asked)


@dataclass
class Outcome:
    """What one request publishes, planned by pure code (`fan_out`), carried out in order by `publish`."""

    request_id: str
    failures: list[dict[str, Any]] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)
    # (key, SeriesPart): the config first, then each additional regressor's chunks in `columns` order, then
    # each planned series' chunks in `planned` order.
    stored: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)
    # additional regressors, each stored once for all the series that use it: key → (name, chunks)
    columns: dict[str, tuple[str, int]] = field(default_factory=dict)
    # A live request's StandingRequest (the live service follows it), sent after the failures.
    standing: list[dict[str, Any]] = field(default_factory=list)
    # Small enough to be answered where it is ingested (timex_stream.runtime.fast_lane.eligible).
    in_place: bool = False

    @property
    def units(self) -> int:
        return sum(len(p.units) for p in self.planned)

    def opening(self) -> list[tuple[Topic, str, dict[str, Any]]]:
        """(topic, key, record): "accepted", which readers see before anything else of the request but its index
        entry."""
        return [(PROGRESS, self.request_id, p) for p in self.progress[:1]]

    def parts(self) -> list[tuple[Topic, str, dict[str, Any]]]:
        """(topic, key, record) of the SeriesParts, which the units point at."""
        return [(SERIES, k, r) for k, r in self.stored]

    def datasets(self, positions: list[tuple[int, int]]) -> list[tuple[str, dict[str, Any]]]:
        """(key, Dataset) of every unit (cheap ones batched), given where each record of `stored` landed
        (partition, offset)."""
        if len(positions) != len(self.stored):
            raise ValueError(f"{len(positions)} positions for {len(self.stored)} stored records")
        out, at = [], 1
        partition, config_offset = positions[0] if positions else (0, 0)
        stored_at: dict[str, tuple[str, list[int]]] = {}
        for key, (name, chunks) in self.columns.items():
            stored_at[key] = (name, [o for _, o in positions[at:at + chunks]])
            at += chunks
        for p in self.planned:
            ref = series_ref(partition, config_offset, [o for _, o in positions[at:at + p.parts]], p.points,
                             [stored_at[key] for key in p.regressors], p.historical_from)
            at += p.parts
            for group in batches(p.units, p.points):  # cheap units of a series travel together
                first, *more = group
                out.append(dataset(self.request_id, p.name, len(self.planned), p.units[first], first, len(p.units),
                                   ref, more=[(p.units[i], i) for i in more]))
        return out

    def after(self) -> list[tuple[Topic, str, dict[str, Any]]]:
        """(topic, key, record) to produce after the datasets: the failures, a live request's standing record,
        then "ingested" (or a live request's "waiting")."""
        rid = self.request_id
        return ([(FAILURES, rid, f) for f in self.failures] + [(STANDING, rid, s) for s in self.standing]
                + [(PROGRESS, rid, p) for p in self.progress[1:]])


def accepted(rid: str, parsed: ParsedConfig, replay_of: str | None) -> dict[str, Any]:
    return progress(rid, "accepted", "; ".join(f"warning: {w}" for w in parsed.warnings),
                    title=parsed.config.activity_title, replay_of=replay_of,
                    visualization=parsed.config.visualization_parameters.for_charts())


def fan_out(out: Outcome, config: TimexConfig, series: dict[str, pd.Series], replay_of: str | None,
            note: str = "", limits: RequestLimits | None = None, regressors: AdditionalRegressors | None = None
            ) -> Outcome:
    """Check the request's limits, plan every series' units and add one Dataset per unit, then the
    "ingested" progress record. Past a limit: one fatal "limits" Failure and no Dataset. `regressors`:
    the series' additional regressors (a series whose regressors cannot be used is not forecast)."""
    rid = out.request_id
    limits = limits or RequestLimits()
    regressors = regressors or AdditionalRegressors()
    names = {name: regressors.names(name) for name in series}
    if over_limits := check_config(config, limits) or check_data(config, series, limits, names):
        out.failures.append(failure(rid, "limits", describe(over_limits), fatal=True))
        return out
    for name, message in regressors.errors.items():
        out.failures.append(failure(rid, "regressors", message, series=name))
    out.failures += [failure(rid, "regressors", note) for note in regressors.notes]
    usable = {name: s for name, s in series.items() if name not in regressors.errors}
    planned = _plan(config, usable, out, rid, regressors)
    if not planned:
        out.failures.append(failure(rid, "data", "no series can be forecast (see the other errors)", fatal=True))
        return out
    out.stored.append(config_part(rid, config.to_json()))
    # Where every series is known, once per request: each series' share travels with its prepared data.
    known = {name: series[name] for name in planned}
    xcorr, xcorr_warning = request_xcorr(config, known)
    if xcorr_warning:
        out.failures.append(failure(rid, "xcorr", xcorr_warning))
    elif xcorr:  # TIMEX re-runs it at every historical step: each step's regressors travel with the series
        by_step, step_warning = regressors_by_step(config, known)
        if step_warning:
            out.failures.append(failure(rid, "xcorr", step_warning))
        add_steps(config, known, xcorr, by_step)
    used = list(dict.fromkeys(key for name in planned for key in regressors.per_series.get(name, [])))
    for key in used:
        chunks = regressor_parts(rid, regressors.columns[key])
        out.stored.extend(chunks)
        out.columns[key] = (str(regressors.columns[key].name), len(chunks))
    for name, (units, known) in planned.items():
        chunks = parts(rid, name, len(planned), series[name],
                       xcorr_json=xcorr[name].to_json() if name in xcorr else None)
        out.stored.extend(chunks)
        out.planned.append(Planned(name, units, len(chunks), len(series[name]),
                                   regressors.per_series.get(name, []), known))
    out.progress.append(progress(rid, "ingested", f"{len(planned)} series, {out.units} units{note}",
                                 series_names=sorted(planned), units_total=out.units,
                                 title=config.activity_title, replay_of=replay_of))
    return out


def _plan(config: TimexConfig, series: dict[str, pd.Series], out: Outcome, rid: str,
          regressors: AdditionalRegressors) -> dict[str, tuple[list[UnitSpec], int]]:
    """Per series its units (the ordinary ones, then the historical ones) and the points known at the first
    historical step."""
    planned = {}
    for name, s in series.items():
        try:
            known = first_known(config, s)
        except ValueError as exc:  # the series is still forecast; its answer says why it has no history
            out.failures.append(failure(rid, "config", f"no historical predictions: {exc}", series=name))
            known = 0
        try:
            units = plan_all(config, len(s), name, known, regressors.names(name))
        except ValueError as exc:
            out.failures.append(failure(rid, "data", str(exc), series=name))
            continue
        if units:
            planned[name] = (units, known)
        else:
            out.failures.append(failure(rid, "data", "no unit of work could be planned", series=name))
    return planned


class Sender(Protocol):
    """How `publish` reaches Kafka: `send` queues one record (encoded with its topic's schema, on the
    partition the catalogue gives its key) and returns a handle; `landed` waits until the broker has the
    records of those handles and says where each landed."""

    async def send(self, topic: Topic, key: str, record: dict[str, Any]) -> Any: ...

    async def landed(self, handles: Sequence[Any]) -> list[Landed]: ...


# The fast lane: (the Outcome, where its stored records land: awaited while its units run) → the records that answer
# the units (topic, key, record), sent in their place; None (or none): send the Datasets.
InPlace = Callable[["Outcome", "asyncio.Future[list[Landed]]"],
                   Awaitable[list[tuple[Topic, str, dict[str, Any]]] | None]]


async def publish(sender: Sender, index: dict[str, Any], out: Outcome, in_place: InPlace | None = None
                  ) -> list[tuple[str, dict[str, Any]]]:
    """Send the request's index entry (`request_index.index_record`), then `out`, in order; → the units sent
    to `datasets` (key, Dataset): none when `in_place` answered them (`out.in_place` only). A request the fast lane
    takes sends its SeriesParts first (no reader follows `series`: the units find them by position), and its index
    entry and "accepted" once its units ran, still before anything else of it."""
    opening = [(REQUESTS, out.request_id, index), *out.opening()]  # before any record a reader follows
    here = in_place if out.in_place and out.units else None  # the fast lane answers the units
    for topic, key, record in [] if here else opening:
        await sender.send(topic, key, record)
    # The series and config before the units: they point at where it landed.
    handles = [await sender.send(topic, key, record) for topic, key, record in out.parts()]
    landing = asyncio.ensure_future(sender.landed(handles))
    # The fast lane's units run while the broker stores their series (a round trip of ~3 ms, its run ~5 ms).
    answers = await here(out, landing) if here else None
    # The fast lane's opening goes out with its answer: one produce request then carries everything a reader
    # follows, so the gateway's fetch (and any follower's) wakes once for the request, not twice.
    for topic, key, record in opening if here else []:
        await sender.send(topic, key, record)
    units = [] if answers else out.datasets(await landing)
    for key, record in units:
        await sender.send(DATASETS, key, record)
    for topic, key, record in out.after():
        await sender.send(topic, key, record)
    for topic, key, record in answers or ():  # after "ingested", as the validator's answer comes after it
        await sender.send(topic, key, record)
    return units


class ProducerSender:
    """A `Sender` over a confluent-kafka producer (the CLI's replay): `landed` flushes; call `flush` once the
    sequence is over to wait for the rest."""

    def __init__(self, prod: Producer, timeout_s: float = 30.0) -> None:
        self.prod = prod
        self.timeout_s = timeout_s

    async def send(self, topic: Topic, key: str, record: dict[str, Any]) -> dict[str, Any]:
        slot: dict[str, Any] = {}

        def delivered(err: Any, msg: Any) -> None:
            slot.update(error=err, landed=None if err is not None else (msg.partition(), msg.offset()))

        send(self.prod, topic, key, record, on_delivery=delivered)
        return slot

    async def landed(self, handles: Sequence[Any]) -> list[Landed]:
        self.flush()
        if failed := [slot.get("error", "not acknowledged") for slot in handles if slot.get("landed") is None]:
            raise KafkaException(failed[0])
        return [slot["landed"] for slot in handles]

    def flush(self) -> None:
        if self.prod.flush(self.timeout_s) != 0:
            raise TimeoutError(f"the broker did not acknowledge every record within {self.timeout_s:.0f} s")
