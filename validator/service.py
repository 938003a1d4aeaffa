"""Validator service: consume `predictions` → collect each series' units in a changelog-backed table →
once all are scored, send each model's best unit back to `datasets` for its final refit → once those are
in (or the deadline passed) choose the best model → produce `best-models`, `failures`, `progress`."""

from __future__ import annotations

import logging

import faust

from schemas import encode
from schemas.topics import BEST_MODELS, DATASETS, FAILURES, PREDICTIONS, PROGRESS
from timex_stream.faust_app import create_app, decoded, raw_topic, run_worker
from timex_stream.logs import request_id_var
from timex_stream.records import now_ms
from timex_stream.settings import Settings
from validator.decide import (
    add,
    decide,
    is_complete,
    mark_decided,
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
datasets = raw_topic(app, DATASETS)  # the final refits of each model's best unit go back to the predictors
failures, progress = raw_topic(app, FAILURES), raw_topic(app, PROGRESS)
# Key request_id/series, like the predictions. use_partitioner: the deadline timer writes outside a stream
# event, so the changelog partition comes from the key (all our producers use Kafka's murmur2 partitioner).
# No value_type: values are plain JSON dicts (a value_type must be a faust Record, `dict` breaks recovery).
series_states = app.Table("series-states", key_type=str, partitions=PREDICTIONS.partitions, use_partitioner=True)


@app.agent(predictions)
async def collect(stream: faust.StreamT) -> None:
    async for event, prediction in decoded(app, stream, PREDICTIONS):
        rid, series = prediction["request_id"], prediction["series"]
        request_id_var.set(rid)
        key = event.key.decode()
        state = series_states.get(key)
        if state is None:
            if prediction["unit"]["refit"]:  # a refit this validator never asked for (state lost): ignore
                log.warning("refit of %s for an unknown series", key)
                continue
            state = new_state(prediction)
        if not add(state, prediction):
            continue  # a redelivered unit, or the series is already decided
        if is_complete(state):
            await _publish_decision(key, rid, series, state)
            continue
        if validated(state) and state["refits_expected"] is None:
            # Every unit scored: ask the predictors for each model's final forecast (refit on window + test).
            for refit_key, dataset in plan_refits(rid, series, state):
                await datasets.send(key=refit_key.encode(), value=encode("Dataset", dataset))
            if is_complete(state):  # no model succeeded: nothing to refit
                await _publish_decision(key, rid, series, state)
                continue
        series_states[key] = state
        await progress.send(key=rid.encode(), value=encode("Progress", progress_of(rid, series, state)))


@app.timer(interval=5.0)
async def enforce_deadlines() -> None:
    """Series whose units stopped arriving are decided with what came, so every request gets an answer."""
    cutoff = now_ms() - settings.validator_deadline_s * 1000
    for key, state in list(series_states.items()):
        if not state["decided"] and state["first_at"] < cutoff:
            rid, _, series = key.partition("/")
            log.warning("deadline passed for %s: %d/%d units", key, len(state["units"]), state["total"])
            await _publish_decision(key, rid, series, state, deadline_s=settings.validator_deadline_s)


async def _publish_decision(key: str, rid: str, series: str, state: dict, deadline_s: float | None = None) -> None:
    record, series_failures = decide(rid, series, state, deadline_s)
    # Answer first, marker after: a stop in between means this series is decided again on redelivery (the
    # readers keep one answer per series), never that the marker exists without the answer having gone out.
    await best_models.send(key=rid.encode(), value=encode("BestModel", record))
    for f in series_failures:
        await failures.send(key=rid.encode(), value=encode("Failure", f))
        metrics.failures.labels(f["stage"]).inc()
    await progress.send(key=rid.encode(), value=encode("Progress", progress_of(rid, series, state, done=True)))
    series_states[key] = mark_decided(state)
    metrics.produced.labels(BEST_MODELS.name).inc()
    log.info("%s decided: %s (%d/%d units)", series, record["model"], record["units_done"], record["units_total"])


def main(s: Settings) -> int:
    return run_worker(app, "validator", s)
