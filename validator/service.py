"""Validator service: consume `predictions` → collect each series' units in a changelog-backed table →
once all are scored, send each model's best unit back to `datasets` for its final refit → once those are
in (or the deadline passed) choose the best model → produce `best-models`, `failures`, `progress`."""

from __future__ import annotations

import asyncio
import logging

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
    add,
    deadline_marker,
    decide,
    forgettable,
    identity,
    is_complete,
    is_deadline_marker,
    is_forget_marker,
    mark_decided,
    missing_units,
    new_state,
    plan_refits,
    progress_of,
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
# Key request_id/series, like the predictions. Every write happens while processing a prediction, so the
# changelog partition is that prediction's partition: state and input stay co-partitioned across restarts
# and rebalances (the deadline timer therefore sends a marker through the stream instead of writing).
# No value_type: values are plain JSON dicts (a value_type must be a faust Record, `dict` breaks recovery).
store = SeriesStore(settings.bootstrap_servers or "", cache_records=64)  # configs, read once per request
series_states = app.Table("series-states", key_type=str, partitions=PREDICTIONS.partitions)
# The timer's index, in memory: undecided series (stall repair, deadline) and decided markers not yet
# forgotten. Kept by the agent as it writes and rebuilt from the table after each recovery, so the timer
# never scans the whole table and its cost follows the live series, not the requests ever served.
live_keys: set[str] = set()
decided_keys: set[str] = set()


@series_states.on_recover
async def _index_recovered_states() -> None:
    live_keys.clear()
    decided_keys.clear()
    for key, state in list(series_states.items()):
        (decided_keys if state["decided"] else live_keys).add(key)


@app.agent(predictions)
async def collect(stream: faust.StreamT) -> None:
    async for _event, prediction in decoded(app, stream, PREDICTIONS):
        rid, series = prediction["request_id"], prediction["series"]
        request_id_var.set(rid)
        key = series_key(rid, series)  # from the record: the event's key bytes are the producer's business
        state = series_states.get(key)
        if is_forget_marker(prediction):
            # The answer went out more than TIMEX_VALIDATOR_FORGET_S ago: tombstone the marker. Only a decided
            # marker goes: a series that started again since (a duplicate beyond the grace window) stays.
            decided_keys.discard(key)
            if state is not None and state["decided"]:
                del series_states[key]
            continue
        if is_deadline_marker(prediction):
            if state is not None and not state["decided"]:
                log.warning("deadline passed for %s: %d/%d units", key, len(state["units"]), state["total"])
                await _publish_decision(key, rid, series, state, deadline_s=settings.validator_deadline_s)
            continue
        if multivariate.is_ours(prediction):  # a regressor's forecast, or a unit fitted with regressors
            if await multivariate.receive(key, prediction, state, _send_prediction, _send_dataset):
                if multivariate.finished(state):
                    await _publish_decision(key, rid, series, state)
                else:
                    series_states[key] = state
            continue
        if state is None:
            if prediction["unit"]["refit"]:  # a refit this validator never asked for (state lost): ignore
                log.warning("refit of %s for an unknown series", key)
                continue
            if prediction["ref"] is None:  # from a unit written before the claim check: no config to read
                log.warning("prediction of %s without a ref: ignored", key)
                continue
            try:
                config_json = await asyncio.to_thread(store.config_json, prediction["ref"])
            except SeriesMissingError as exc:
                log.error("config of %s cannot be read: %s", key, exc)
                continue
            state = new_state(prediction, config_json)
            state["xcorr"] = await asyncio.to_thread(multivariate.read_xcorr, store, prediction["ref"])
        fresh = [add(state, unit) for unit in units_of(prediction)]  # every unit of a batch, no short cut
        if not any(fresh):
            continue  # redelivered units, or the series is already decided
        if is_complete(state):
            await _publish_decision(key, rid, series, state)
            continue
        if validated(state) and state["refits_expected"] is None:
            # Every unit scored: ask the predictors for each model's final forecast (refit on window + test).
            for refit_key, dataset in plan_refits(rid, series, state):
                await send_record(datasets, refit_key, dataset)
            if is_complete(state):  # no model succeeded: nothing to refit
                await _publish_decision(key, rid, series, state)
                continue
        series_states[key] = state
        live_keys.add(key)
        await send_record(progress, rid, progress_of(rid, series, state))


@app.timer(interval=5.0)
async def watch_stalled_series() -> None:
    """A series whose units stopped arriving gets its missing units sent again after a stall (a record can
    be lost, e.g. by a producer that died before sending it), and is decided with what came at the
    deadline, so every request gets an answer. The decision itself goes through the stream as a marker on
    the series' own partition: tables are written while processing an event."""
    now = now_ms()
    for key in list(decided_keys):
        state = series_states.get(key)
        if state is None or not state["decided"]:
            decided_keys.discard(key)
        elif forgettable(state, now, settings.validator_forget_s) and not state.get("forget_sent"):
            state["forget_sent"] = True  # in memory only, as deadline_sent
            await send_record(predictions, key, deadline_marker(key, state, FORGET))
    for key in list(live_keys):
        state = series_states.get(key)
        if state is None or state["decided"]:
            live_keys.discard(key)
            continue
        if now - state["first_at"] > settings.validator_deadline_s * 1000:
            if not state.get("deadline_sent"):  # in memory only: after a restart it is simply sent again
                state["deadline_sent"] = True
                await send_record(predictions, key, deadline_marker(key, state))
        elif now - max(state["last_at"], state.get("repaired_at", 0)) > settings.validator_stall_s * 1000:
            state["repaired_at"] = now
            rid, series = identity(key, state)
            missing = missing_units(rid, series, state)
            log.warning("%s stalled at %d/%d units: sending %d again", key, len(state["units"]), state["total"],
                        len(missing))
            for unit_key, dataset in missing:
                await send_record(datasets, unit_key, dataset)


async def _publish_decision(key: str, rid: str, series: str, state: dict, deadline_s: float | None = None) -> None:
    record, series_failures = decide(rid, series, state, deadline_s)
    # The univariate forecast is what the series it is an extra regressor of use (TIMEX's order), sent as
    # soon as it is known: two series that are each other's regressor never wait for each other.
    await multivariate.announce(rid, series, state, record, store, _send_series, _send_prediction)
    if deadline_s is None and await multivariate.hold(rid, series, state, _send_dataset):
        series_states[key] = state  # univariate done; the multivariate stage goes on (bounded by the deadline)
        live_keys.add(key)
        return
    series_failures += multivariate.answer(rid, series, state, record)
    # Answer first, marker after: a stop in between means this series is decided again on redelivery (the
    # readers keep one answer per series), never that the marker exists without the answer having gone out.
    # The series' failures go before its answer, so a reader that stops at the answer has most likely seen them.
    for f in series_failures:
        await send_record(failures, rid, f)
        metrics.failures.labels(f["stage"]).inc()
    await send_record(best_models, rid, record)
    await send_record(progress, rid, progress_of(rid, series, state, done=True))
    series_states[key] = mark_decided(state)
    live_keys.discard(key)
    decided_keys.add(key)
    metrics.produced.labels(BEST_MODELS.name).inc()
    log.info("%s decided: %s (%d/%d units)", series, record["model"], record["units_done"], record["units_total"])


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
