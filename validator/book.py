"""The validator's book of series: every rule of when to answer, ask again, decide or forget, over its table.

Each method plans and returns an ordered list of effects (plain data: records to send, table writes and
deletes, changes of the timer's index), as the ingestion's `Outcome` does; the service (validator.service)
carries them out in order and nothing else. So the ordering rules hold here and are tested on a dict:
- a series' failures go before its answer, its answer (and "series_done") before the decided marker is
  written: a stop in between means the series is decided again on redelivery (the readers keep one answer
  per series), never that the marker exists without the answer having gone out;
- the final refits are asked before the series can be decided with them;
- the timer (`tick`) sends a stalled series' missing units again (the window doubles with each repair:
  `stall_due`), decides a series at the deadline and forgets a decided marker after `forget_s`, each through
  a marker on the series' own partition: the table is written only while processing an event of it.
The book reads the series store (config, xcorr, history tail, a regressor's series) through a `Reader`;
a read is no effect to order, so it happens while planning (in a thread: never on the event loop).

Table layout (timex_stream.runtime.decide): under a series key its SeriesState, under `part_key`s its parts; the book
adds one kind of part, a ready marker waiting for its target's first unit (`_waiting_part`), so a restart
keeps it and the timer (`retry_due`) sends it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pandas as pd

from schemas import Topic
from schemas.keys import escape, series_key
from schemas.topics import BEST_MODELS, DATASETS, FAILURES, PREDICTIONS, PROGRESS, SERIES
from timex_stream.runtime.decide import (
    FORGET,
    READY,
    Series,
    SeriesState,
    add,
    deadline_marker,
    decide,
    forgettable,
    history_tail,
    is_complete,
    is_deadline_marker,
    is_forget_marker,
    is_series_key,
    mark_decided,
    missing_units,
    new_series,
    part_key,
    plan_refits,
    progress_of,
    recount,
    stall_due,
    upgrade,
    validated,
)
from timex_stream.runtime.records import now_ms, units_of
from timex_stream.runtime.series_store import SeriesMissingError, SeriesStore
from validator import multivariate

log = logging.getLogger("validator")
Records = list[tuple[str, dict[str, Any]]]


# --- effects ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Send:
    """Produce `record` under `key` on `topic` (encoded with the topic's schema)."""

    topic: Topic
    key: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Write:
    """Write `value` under `key` in the table."""

    key: str
    value: Any


@dataclass(frozen=True)
class Delete:
    """Delete `key` from the table (a tombstone on its changelog)."""

    key: str


@dataclass(frozen=True)
class Track:
    """Tell the book's timer index what became of a series once the effects before are carried out
    (`Book.track`): "live" (watched for stalls and the deadline), "decided" (watched until forgotten) or
    "forgotten"."""

    key: str
    status: Literal["live", "decided", "forgotten"]


Landed = list[tuple[int, int]] | Exception


@dataclass(frozen=True)
class Publish:
    """Produce `records` on `topic` and wait until the broker has them (a barrier): `then` gets where they
    landed ((partition, offset) each), or the error that stopped them, and returns the effects to carry out
    next (before those that follow this one)."""

    topic: Topic
    records: Records
    then: Callable[[Landed], list[Effect]]


Effect = Send | Write | Delete | Track | Publish


def _sends(topic: Topic, records: Records) -> list[Effect]:
    return [Send(topic, key, record) for key, record in records]


# --- reads -----------------------------------------------------------------------------------------------

class Reader(Protocol):
    """What the book reads of the `series` topic (the claim check): awaitable, so that it blocks no loop."""

    async def config_and_xcorr(self, ref: dict[str, Any]) -> tuple[str, str | None]: ...

    async def history_tail(self, series: Series) -> tuple[list[Any], list[Any]]: ...

    async def series(self, ref: dict[str, Any] | None, name: str) -> pd.Series: ...


class StoreReader:
    """A `Reader` over a SeriesStore (the topic, or a MemoryStore in tests): its blocking reads in a thread."""

    def __init__(self, store: SeriesStore) -> None:
        self.store = store

    async def config_and_xcorr(self, ref: dict[str, Any]) -> tuple[str, str | None]:
        """The request's config and this series' xcorr (None: none asked for), in one thread hop: the wake-ups of
        the loop by a trivial request's three hops were about a tenth of the validator's CPU (py-spy)."""
        return await asyncio.to_thread(self._config_and_xcorr, ref)

    def _config_and_xcorr(self, ref: dict[str, Any]) -> tuple[str, str | None]:
        return self.store.config_json(ref), multivariate.read_xcorr(self.store, ref)

    async def history_tail(self, series: Series) -> tuple[list[Any], list[Any]]:
        return await asyncio.to_thread(history_tail, series, self.store)

    async def series(self, ref: dict[str, Any] | None, name: str) -> pd.Series:
        return await asyncio.to_thread(self.store.series, ref, name)


# --- the table's pending writes ----------------------------------------------------------------------------

_GONE = object()


class Pending(MutableMapping[str, Any]):
    """The table as one event's planning sees it: reads fall through to the table, writes and deletes are
    held (in their order) until `flush` turns them into effects. A part written and deleted within the
    event (a series decided in the event that created it: most series of many short ones) costs nothing."""

    def __init__(self, table: MutableMapping[str, Any]) -> None:
        self.table = table
        self.ops: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self.ops:
            if self.ops[key] is _GONE:
                raise KeyError(key)
            return self.ops[key]
        return self.table[key]

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.ops:
            return default if self.ops[key] is _GONE else self.ops[key]
        return self.table.get(key, default)

    def __contains__(self, key: object) -> bool:
        if key in self.ops:
            return self.ops[key] is not _GONE
        return key in self.table

    def __setitem__(self, key: str, value: Any) -> None:
        self.ops.pop(key, None)  # the last operation on a key is the one that counts, in its place
        self.ops[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.ops.pop(key, None)
        self.ops[key] = _GONE

    def __iter__(self) -> Iterator[str]:
        yield from (k for k in self.table if k not in self.ops)
        yield from (k for k, v in self.ops.items() if v is not _GONE)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self) -> list[Effect]:
        """The held operations as effects, in order (a delete only of what the table has); then none held."""
        out: list[Effect] = [Write(k, v) if v is not _GONE else Delete(k) for k, v in self.ops.items()
                             if v is not _GONE or k in self.table]
        self.ops.clear()
        return out


def _waiting_part(key: str, regressor: str) -> str:
    """A ready marker for series `key` that came before the series' first unit, waiting to be sent again."""
    return part_key(key, f"w{escape(regressor)}")


def _is_waiting_part(key: str) -> bool:
    return key.count("/") == 2 and key.rsplit("/", 1)[1].startswith("w")


# --- the book --------------------------------------------------------------------------------------------

class Book:
    """The validator's series over its table (`table`: the Faust table, a dict in tests)."""

    def __init__(self, table: MutableMapping[str, Any], reader: Reader, deadline_s: float, stall_s: float,
                 forget_s: float) -> None:
        self.table, self.reader = table, reader
        self.deadline_s, self.stall_s, self.forget_s = deadline_s, stall_s, forget_s
        # Old-format states read back from the changelog, upgraded in memory until an event writes them anew.
        self.upgraded: dict[str, Series] = {}
        # The timer's index, in memory: undecided series (stall repair, deadline) and decided markers not yet
        # forgotten, so the timer never scans the whole table. Kept by `track`, rebuilt by `recover`.
        self.live_keys: set[str] = set()
        self.decided_keys: set[str] = set()
        # What the timer already did, in memory only: after a restart a marker is simply sent again.
        self.deadline_sent: set[str] = set()
        self.forget_sent: set[str] = set()
        self.repaired_at: dict[str, int] = {}
        # The timer's first tick: no series is judged stalled on a window older than this process's watch (after
        # a restart, the units that came while the validator was down are still in its topic, on their way).
        self.watching_since: int | None = None
        self.repairs: dict[str, int] = {}  # repairs sent per series: each doubles its next stall window
        # Ready markers waiting for their target (its `_waiting_part`): part key → (due, target key, marker).
        self.waiting: dict[str, tuple[int, str, dict[str, Any]]] = {}

    # --- reading the table ---

    def series(self, key: str, parts: MutableMapping[str, Any] | None = None) -> Series | None:
        """The series under `key` (its parts read and written through `parts`, by default the table)."""
        parts = self.table if parts is None else parts
        value = self.table.get(key)
        if isinstance(value, SeriesState):
            return Series(key, value, parts)
        if value is None:
            return None
        if key not in self.upgraded:
            state, old_parts = upgrade(key, value)
            self.upgraded[key] = Series(key, state, old_parts)
        return self.upgraded[key]

    def _series_to_write(self, key: str, pending: Pending) -> Series | None:
        """`series`, with an upgraded old-format series moved into the table first (an event of the key's
        partition is being processed: its writes belong there)."""
        series = self.series(key, pending)
        if series is None or self.upgraded.pop(key, None) is None:
            return series
        for part, value in series.parts.items():
            pending[part] = value
        pending[key] = series.state
        log.info("%s: state of an older version upgraded (%d parts)", key, len(series.parts))
        return Series(key, series.state, pending)

    def recover(self) -> None:
        """Rebuild the in-memory index from the table (after each recovery of its changelog)."""
        self.live_keys.clear()
        self.decided_keys.clear()
        self.upgraded.clear()
        self.waiting.clear()
        for key in list(self.table):
            if is_series_key(key):
                series = self.series(key)
                if series is not None:
                    recount(series)
                    (self.decided_keys if series.state.decided else self.live_keys).add(key)
            elif _is_waiting_part(key):
                found = self.table[key]
                self.waiting[key] = (found["due"], found["key"], found["marker"])

    def track(self, effect: Track) -> None:
        key = effect.key
        if effect.status == "live":
            self.live_keys.add(key)
        elif effect.status == "decided":
            self.live_keys.discard(key)
            self.decided_keys.add(key)
            self.deadline_sent.discard(key)
            self.repaired_at.pop(key, None)
            self.repairs.pop(key, None)
        else:
            self.decided_keys.discard(key)
            self._forget_timer_marks(key)

    def _forget_timer_marks(self, key: str) -> None:
        self.deadline_sent.discard(key)
        self.forget_sent.discard(key)
        self.repaired_at.pop(key, None)
        self.repairs.pop(key, None)

    # --- an event on `predictions` ---

    async def receive(self, prediction: dict[str, Any]) -> list[Effect]:
        """A Prediction (one unit or a batch), or one of the validator's own markers (deadline, forget,
        a regressor ready) → the effects, in order."""
        key = series_key(prediction["request_id"], prediction["series"])  # from the record, not the event key
        pending = Pending(self.table)
        series = self._series_to_write(key, pending)
        if is_forget_marker(prediction):
            out = self._forget(key, series, pending)
        elif is_deadline_marker(prediction):
            out = await self._deadline(key, series, pending)
        elif multivariate.is_ours(prediction):  # a regressor's forecast, or a unit fitted with regressors
            out = await self._multivariate(key, prediction, series, pending)
        else:
            out = await self._units(key, prediction, series, pending)
        return out + pending.flush()  # anything left (an upgraded series' parts) goes last

    def _forget(self, key: str, series: Series | None, pending: Pending) -> list[Effect]:
        """The answer went out more than `forget_s` ago: tombstone the marker. Only a decided marker goes: a
        series that started again since (a duplicate beyond the grace window) stays."""
        self.decided_keys.discard(key)
        if series is None or not series.state.decided:
            return []
        del pending[key]
        return [*pending.flush(), Track(key, "forgotten")]

    async def _deadline(self, key: str, series: Series | None, pending: Pending) -> list[Effect]:
        if series is None or series.state.decided:
            return []
        log.warning("deadline passed for %s: %d/%d units", key, series.state.units_done, series.state.total)
        return await self._decide(series, pending, deadline_s=self.deadline_s)

    async def _multivariate(self, key: str, prediction: dict[str, Any], series: Series | None,
                            pending: Pending) -> list[Effect]:
        ready = prediction["unit"]["index"] == READY
        if series is None:  # without a series nothing changes; a ready marker waits for it
            return self._wait(key, prediction, pending) if ready else []
        waiting = _waiting_part(key, prediction["unit"]["model"])
        if ready and waiting in pending:  # a marker that waited: it is here now
            del pending[waiting]
            self.waiting.pop(waiting, None)
        changed, datasets = multivariate.receive(series, prediction)
        out = _sends(DATASETS, datasets)
        if not changed:
            return out
        if multivariate.finished(series):
            return out + await self._decide(series, pending)
        pending[key] = series.state
        return out + pending.flush()

    def _wait(self, key: str, prediction: dict[str, Any], pending: Pending) -> list[Effect]:
        """A ready marker that beat its target's first unit: kept in the table, `retry_due` sends it again
        (boundedly: multivariate.READY_TRIES)."""
        waiting = _waiting_part(key, prediction["unit"]["model"])
        again = multivariate.retried(prediction)
        if again is None:
            log.warning("ready marker of %s for %s dropped: its series never came", prediction["unit"]["model"],
                        key)
            if waiting in pending:
                del pending[waiting]
            self.waiting.pop(waiting, None)
            return pending.flush()
        due = now_ms() + round(multivariate.READY_RETRY_S * 1000)
        pending[waiting] = {"key": key, "due": due, "marker": again}
        self.waiting[waiting] = (due, key, again)
        return pending.flush()

    async def _units(self, key: str, prediction: dict[str, Any], series: Series | None,
                     pending: Pending) -> list[Effect]:
        rid = prediction["request_id"]
        created = series is None
        if series is None:
            if prediction["unit"]["refit"]:  # a refit this validator never asked for (state lost): ignore
                log.warning("refit of %s for an unknown series", key)
                return []
            if prediction["ref"] is None:  # from a unit written before the claim check: no config to read
                log.warning("prediction of %s without a ref: ignored", key)
                return []
            try:
                config_json, xcorr_json = await self.reader.config_and_xcorr(prediction["ref"])
            except SeriesMissingError as exc:
                log.error("config of %s cannot be read: %s", key, exc)
                return []
            series = new_series(key, prediction, config_json, pending, xcorr_json)
            # Parts left by an attempt cut short (a stop, a rebalance) before this state was stored count.
            recount(series)
        fresh = [add(series, unit) for unit in units_of(prediction)]  # every unit of a batch, no short cut
        if not any(fresh):  # redelivered units, or the series is already decided
            return self._store(series, pending) if created else []  # a new one's units were all in: count them
        state = series.state
        if is_complete(state):
            return await self._decide(series, pending)
        out: list[Effect] = []
        if validated(state) and state.refits_expected is None:
            # Every unit scored: ask the predictors for each model's final forecast (refit on window + test).
            out += _sends(DATASETS, plan_refits(series))
            if is_complete(state):  # no model succeeded: nothing to refit
                return out + await self._decide(series, pending)
        return [*out, *self._store(series, pending), Track(key, "live"), Send(PROGRESS, rid, progress_of(series))]

    def _store(self, series: Series, pending: Pending) -> list[Effect]:
        """Write the series' state, after the parts written while planning."""
        pending[series.key] = series.state
        return pending.flush()

    async def _decide(self, series: Series, pending: Pending, deadline_s: float | None = None) -> list[Effect]:
        state, key = series.state, series.key
        if not state.has_history and state.ref is not None:
            try:
                series.tail = await self.reader.history_tail(series)
            except (SeriesMissingError, ValueError) as exc:  # the answer goes out without its plot's history
                log.error("history of %s cannot be read: %s", key, exc)
        record, failures = decide(series, deadline_s)
        rid = state.request_id
        # The univariate forecast is what the series it is an extra regressor of use (TIMEX's order), sent as
        # soon as it is known: two series that are each other's regressor never wait for each other.
        out = await self._announce(series, record)
        if deadline_s is None:
            held, datasets = multivariate.hold(series)
            out += _sends(DATASETS, datasets)
            if held:  # univariate done; the multivariate stage goes on (deadline)
                return [*out, *self._store(series, pending), Track(key, "live")]
        failures += multivariate.answer(series, record)
        # Failures, then the answer, then the decided marker (see the module's docstring).
        out += _sends(FAILURES, [(rid, f) for f in failures])
        out += [Send(BEST_MODELS, rid, record), Send(PROGRESS, rid, progress_of(series, record))]
        pending[key] = mark_decided(series)
        return [*out, *pending.flush(), Track(key, "decided")]

    async def _announce(self, series: Series, record: dict[str, Any]) -> list[Effect]:
        """As an extra regressor of other series: store the series' history + forecast, then tell each target
        where it landed (or why there is none: the targets must still be answered, univariately)."""
        if not multivariate.announces(series):
            return []
        series.state.announced = True
        name = series.state.series
        if record["forecast"] is None:
            return _sends(PREDICTIONS, multivariate.ready_markers(series, None, f"'{name}' has no forecast"))
        try:
            history = await self.reader.series(series.state.ref, name)
            chunks = multivariate.regressor_chunks(series, record, history)
            steps = multivariate.step_chunks(series, history)  # its own historical forecasts, for their steps
        except Exception as exc:
            return self._not_stored(series, exc)

        def then(landed: Landed) -> list[Effect]:
            if isinstance(landed, Exception):
                return self._not_stored(series, landed)
            where = multivariate.where_landed(landed, len(chunks), steps)
            return _sends(PREDICTIONS, multivariate.ready_markers(series, where, None))

        return [Publish(SERIES, chunks + [c for _, _, step in steps for c in step], then)]

    def _not_stored(self, series: Series, exc: Exception) -> list[Effect]:
        name = series.state.series
        log.error("regressor %s could not be stored", name, exc_info=exc)
        error = f"'{name}' could not be stored as a regressor: {exc}"
        return _sends(PREDICTIONS, multivariate.ready_markers(series, None, error))

    # --- the timer ---

    def tick(self, now: int) -> list[Effect]:
        """A series whose units stopped arriving gets its missing units sent again after a stall (a record can
        be lost, e.g. by a producer that died before sending it; the window starts no earlier than the first
        tick), and is decided with what came at the
        deadline, so every request gets an answer; a decided marker is forgotten after `forget_s`. Deciding
        and forgetting go through the stream, as markers on the series' own partition. Writes nothing."""
        out: list[Effect] = []
        if self.watching_since is None:
            self.watching_since = now
        since = self.watching_since
        for key in list(self.decided_keys):
            series = self.series(key, Pending(self.table))
            if series is None or not series.state.decided:
                self.decided_keys.discard(key)
                self._forget_timer_marks(key)
            elif forgettable(series.state, now, self.forget_s) and key not in self.forget_sent:
                self.forget_sent.add(key)
                out.append(Send(PREDICTIONS, key, deadline_marker(series.state, FORGET)))
        for key in list(self.live_keys):
            # Through a Pending that is dropped: re-planning a repair (plan_refits) may not write the table.
            series = self.series(key, Pending(self.table))
            if series is None or series.state.decided:
                self.live_keys.discard(key)
                self._forget_timer_marks(key)
                continue
            state = series.state
            if now - state.first_at > self.deadline_s * 1000:
                if key not in self.deadline_sent:
                    self.deadline_sent.add(key)
                    out.append(Send(PREDICTIONS, key, deadline_marker(state)))
            elif stall_due(state, now, self.stall_s, max(self.repaired_at.get(key, 0), since),
                           self.repairs.get(key, 0)):
                self.repaired_at[key] = now
                self.repairs[key] = self.repairs.get(key, 0) + 1
                missing = missing_units(series) + multivariate.missing_units(series)
                log.warning("%s stalled at %d/%d units: sending %d again", key, state.units_done, state.total,
                            len(missing))
                out += _sends(DATASETS, missing)
        return out

    def retry_due(self, now: int) -> list[Effect]:
        """The waiting ready markers whose time came, sent again to their target (each comes back to
        `receive`, which keeps it or lets it wait once more)."""
        due = [(part, key, marker) for part, (at, key, marker) in self.waiting.items() if at <= now]
        for part, _, _ in due:
            del self.waiting[part]
        return [Send(PREDICTIONS, key, marker) for _, key, marker in due]
