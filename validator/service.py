"""Validator service: consume `predictions` → collect each series' units in a changelog-backed table →
once all are scored, send each model's best unit back to `datasets` for its final refit → once those are
in (or the deadline passed) choose the best model → produce `best-models`, `failures`, `progress`."""

from __future__ import annotations

import asyncio
import logging
from collections import ChainMap

import faust

from schemas.keys import series_key
from schemas.topics import BEST_MODELS, DATASETS, FAILURES, PREDICTIONS, PROGRESS, SERIES
from timex_stream.faust_app import create_app, decoded, raw_topic, run_worker, send_record
from timex_stream.logs import request_id_var
from timex_stream.records import now_ms, units_of
from timex_stream.series_store import SeriesMissingError, SeriesStore
from timex_stream.settings import Settings
from validator import multivariate
from validator.decide import (
    FORGET,
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
    plan_refits,
    progress_of,
    recount,
    stall_due,
    upgrade,
    validated,
)

log = logging.getLogger("validator")
settings = Settings.from_env()
app = create_app("validator", settings)
metrics = app.timex_metrics  # type: ignore[attr-defined]
predictions, best_models = raw_topic(app, PREDICTIONS), raw_topic(app, BEST_MODELS)
series_parts = raw_topic(app, SERIES)  # a regressor's history + forecast, for the series it is a regressor of
datasets = raw_topic(app, DATASETS)  # the final refits of each model's best unit go back to the predictors
failures, progress = raw_topic(app, FAILURES), raw_topic(app, PROGRESS)
# One table keyed from request_id/series, like the predictions: under the series key its SeriesState (small,
# rewritten as its counters move), under `part_key`s its parts (config, history tail, xcorr, one outcome per
# unit, the multivariate stage's markers and units: each written once), so a unit costs the changelog O(1)
# bytes. (One table, not two: a second changelog topic is created by Faust at start, and a worker that starts
# before it exists stalls its agent.)
# Every write happens while processing a prediction, so the changelog partition is that prediction's
# partition: state and input stay co-partitioned across restarts and rebalances (the deadline timer
# therefore sends a marker through the stream instead of writing).
# No value_type: values are JSON; a SeriesState carries its Faust type tag and comes back as one, while a
# dict written by the versions before comes back as a dict and is upgraded (`_series`).
store = SeriesStore(settings.bootstrap_servers or "")  # each series' config and xcorr, read once per series
series_states = app.Table("series-states", key_type=str, partitions=PREDICTIONS.partitions)
# Old-format states read back from the changelog, upgraded in memory until the agent writes them anew.
upgraded: dict[str, Series] = {}
# The timer's index, in memory: undecided series (stall repair, deadline) and decided markers not yet
# forgotten. Kept by the agent as it writes and rebuilt from the table after each recovery, so the timer
# never scans the whole table and its cost follows the live series, not the requests ever served.
live_keys: set[str] = set()
decided_keys: set[str] = set()
# What the timer already did, in memory only: after a restart a marker is simply sent again.
deadline_sent: set[str] = set()
forget_sent: set[str] = set()
repaired_at: dict[str, int] = {}
repairs: dict[str, int] = {}  # repairs sent per series: each doubles its next stall window (stall_due)


def _series(key: str) -> Series | None:
    value = series_states.get(key)
    if isinstance(value, SeriesState):
        return Series(key, value, series_states)
    if value is None:
        return None
    if key not in upgraded:
        state, parts = upgrade(key, value)
        upgraded[key] = Series(key, state, parts)
    return upgraded[key]


def _series_to_write(key: str) -> Series | None:
    """`_series`, with an upgraded old-format series moved into the tables first (the agent calls it while
    processing an event of the key's partition, where its writes belong)."""
    series = _series(key)
    if series is None or upgraded.pop(key, None) is None:
        return series
    for part, value in series.parts.items():
        series_states[part] = value
    series_states[key] = series.state
    log.info("%s: state of an older version upgraded (%d parts)", key, len(series.parts))
    return Series(key, series.state, series_states)


def _forget_timer_marks(key: str) -> None:
    deadline_sent.discard(key)
    forget_sent.discard(key)
    repaired_at.pop(key, None)
    repairs.pop(key, None)


@series_states.on_recover
async def _index_recovered_states() -> None:
    live_keys.clear()
    decided_keys.clear()
    upgraded.clear()
    for key in [k for k in series_states if is_series_key(k)]:
        series = _series(key)
        if series is not None:
            recount(series)
            (decided_keys if series.state.decided else live_keys).add(key)


@app.agent(predictions)
async def collect(stream: faust.StreamT) -> None:
    async for _event, prediction in decoded(app, stream, PREDICTIONS):
        rid, name = prediction["request_id"], prediction["series"]
        request_id_var.set(rid)
        key = series_key(rid, name)  # from the record: the event's key bytes are the producer's business
        series = _series_to_write(key)
        if is_forget_marker(prediction):
            # The answer went out more than TIMEX_VALIDATOR_FORGET_S ago: tombstone the marker. Only a decided
            # marker goes: a series that started again since (a duplicate beyond the grace window) stays.
            decided_keys.discard(key)
            if series is not None and series.state.decided:
                del series_states[key]
                _forget_timer_marks(key)
            continue
        if is_deadline_marker(prediction):
            if series is not None and not series.state.decided:
                log.warning("deadline passed for %s: %d/%d units", key, series.state.units_done,
                            series.state.total)
                await _publish_decision(series, deadline_s=settings.validator_deadline_s)
            continue
        if multivariate.is_ours(prediction):  # a regressor's forecast, or a unit fitted with regressors
            changed = await multivariate.receive(key, prediction, series, _send_prediction, _send_dataset)
            if changed and series is not None:  # without a series nothing changes
                if multivariate.finished(series):
                    await _publish_decision(series)
                else:
                    series_states[key] = series.state
            continue
        if series is None:
            if prediction["unit"]["refit"]:  # a refit this validator never asked for (state lost): ignore
                log.warning("refit of %s for an unknown series", key)
                continue
            if prediction["ref"] is None:  # from a unit written before the claim check: no config to read
                log.warning("prediction of %s without a ref: ignored", key)
                continue
            try:
                config_json = await asyncio.to_thread(store.config_json, prediction["ref"])
                xcorr_json = await asyncio.to_thread(multivariate.read_xcorr, store, prediction["ref"])
            except SeriesMissingError as exc:
                log.error("config of %s cannot be read: %s", key, exc)
                continue
            # A new series' parts are held in memory until the end of this event (reads fall through to the
            # table): most series of many short ones come whole in one record and are decided right here, and
            # their parts, written then tombstoned at once, were 28 of the 30 changelog records of each.
            series = new_series(key, prediction, config_json, ChainMap({}, series_states), xcorr_json)
            # Parts left by an attempt cut short (a stop, a rebalance) before this state was stored count.
            recount(series)
        fresh = [add(series, unit) for unit in units_of(prediction)]  # every unit of a batch, no short cut
        if not any(fresh):
            if isinstance(series.parts, ChainMap):  # every unit of a new series was in already: count them
                _store(series)
            continue  # redelivered units, or the series is already decided
        state = series.state
        if is_complete(state):
            await _publish_decision(series)
            continue
        if validated(state) and state.refits_expected is None:
            # Every unit scored: ask the predictors for each model's final forecast (refit on window + test).
            for refit_key, dataset in plan_refits(series):
                await send_record(datasets, refit_key, dataset)
            if is_complete(state):  # no model succeeded: nothing to refit
                await _publish_decision(series)
                continue
        _store(series)
        live_keys.add(key)
        await send_record(progress, rid, progress_of(series))


@app.timer(interval=5.0)
async def watch_stalled_series() -> None:
    """A series whose units stopped arriving gets its missing units sent again after a stall (a record can
    be lost, e.g. by a producer that died before sending it), and is decided with what came at the
    deadline, so every request gets an answer. The decision itself goes through the stream as a marker on
    the series' own partition: tables are written while processing an event."""
    now = now_ms()
    for key in list(decided_keys):
        series = _series(key)
        if series is None or not series.state.decided:
            decided_keys.discard(key)
            _forget_timer_marks(key)
        elif forgettable(series.state, now, settings.validator_forget_s) and key not in forget_sent:
            forget_sent.add(key)
            await send_record(predictions, key, deadline_marker(series.state, FORGET))
    for key in list(live_keys):
        series = _series(key)
        if series is None or series.state.decided:
            live_keys.discard(key)
            _forget_timer_marks(key)
            continue
        state = series.state
        if now - state.first_at > settings.validator_deadline_s * 1000:
            if key not in deadline_sent:
                deadline_sent.add(key)
                await send_record(predictions, key, deadline_marker(state))
        elif stall_due(state, now, settings.validator_stall_s, repaired_at.get(key, 0), repairs.get(key, 0)):
            repaired_at[key] = now
            repairs[key] = repairs.get(key, 0) + 1
            missing = missing_units(series) + multivariate.missing_units(series)
            log.warning("%s stalled at %d/%d units: sending %d again", key, state.units_done, state.total,
                        len(missing))
            for unit_key, dataset in missing:
                await send_record(datasets, unit_key, dataset)


def _store(series: Series) -> None:
    """Write the series' state, and first its parts if they are still held in memory (a new series)."""
    if isinstance(series.parts, ChainMap):
        for part, value in series.parts.maps[0].items():
            series_states[part] = value
        series.parts = series_states
    series_states[series.key] = series.state


async def _publish_decision(series: Series, deadline_s: float | None = None) -> None:
    if not series.state.has_history and series.state.ref is not None:
        try:
            series.tail = await asyncio.to_thread(history_tail, series, store)
        except (SeriesMissingError, ValueError) as exc:  # the answer goes out without its plot's history
            log.error("history of %s cannot be read: %s", series.key, exc)
    record, series_failures = decide(series, deadline_s)
    rid = series.state.request_id
    # The univariate forecast is what the series it is an extra regressor of use (TIMEX's order), sent as
    # soon as it is known: two series that are each other's regressor never wait for each other.
    await multivariate.announce(series, record, store, _send_series, _send_prediction)
    if deadline_s is None and await multivariate.hold(series, _send_dataset):
        _store(series)  # univariate done; the multivariate stage goes on (deadline)
        live_keys.add(series.key)
        return
    series_failures += multivariate.answer(series, record)
    # Answer first, marker after: a stop in between means this series is decided again on redelivery (the
    # readers keep one answer per series), never that the marker exists without the answer having gone out.
    # The series' failures go before its answer, so a reader that stops at the answer has most likely seen them.
    for f in series_failures:
        await send_record(failures, rid, f)
        metrics.failures.labels(f["stage"]).inc()
    await send_record(best_models, rid, record)
    await send_record(progress, rid, progress_of(series, record))
    if isinstance(series.parts, ChainMap):  # decided in the event that created it: its parts were never
        series.parts = series_states  # written, so mark_decided tombstones only what an attempt cut short left
    series_states[series.key] = mark_decided(series)
    live_keys.discard(series.key)
    decided_keys.add(series.key)
    deadline_sent.discard(series.key)
    repaired_at.pop(series.key, None)
    repairs.pop(series.key, None)
    metrics.produced.labels(BEST_MODELS.name).inc()
    log.info("%s decided: %s (%d/%d units)", series.state.series, record["model"], record["units_done"],
             record["units_total"])


async def _send_prediction(key: str, record: dict) -> object:
    return await send_record(predictions, key, record)


async def _send_dataset(key: str, record: dict) -> object:
    return await send_record(datasets, key, record)


async def _send_series(key: str, record: dict) -> object:
    return await send_record(series_parts, key, record)


@app.on_before_shutdown.connect
def _close_store(*_: object, **__: object) -> None:
    store.close()


def main(s: Settings) -> int:
    return run_worker(app, "validator", s)
