"""Predictor service: consume `datasets` → run the unit in a bounded worker pool (never on the event loop;
each unit under a memory cap and a time limit) → produce `predictions`. Several predictor processes share
the work through the consumer group."""

from __future__ import annotations

import asyncio
import logging

import faust
from prometheus_client import Counter

from predictor.answer import answer
from schemas import series_key
from schemas.topics import DATASETS, PREDICTIONS
from timex_stream.runtime.faust_app import create_app, decoded, raw_topic, run_worker, send_record
from timex_stream.runtime.logs import handling, logged
from timex_stream.runtime.pool import Limits, UnitPool, forkserver_context, start_model_worker
from timex_stream.runtime.series_store import SeriesStore
from timex_stream.runtime.settings import Settings
from timex_stream.runtime.unit_work import Job, fits, job_for

log = logging.getLogger("predictor")
# What the pool's fork server imports once: its workers start with the model libraries loaded.
PRELOAD = ["timex_stream.runtime.orphan_guard", "timex_stream.runtime.pool", "timex_stream.runtime.unit_work"]


def build_app(settings: Settings) -> faust.App:
    """The predictor's app, its unit pool and series store (nothing starts until the worker runs it)."""
    app = create_app("predictor", settings)
    metrics = app.timex_metrics  # type: ignore[attr-defined]
    stopped = Counter("timex_units_stopped", "units stopped by a limit (their worker was replaced)", ["limit"],
                      registry=metrics.registry)
    datasets, predictions = raw_topic(app, DATASETS), raw_topic(app, PREDICTIONS)
    pool = UnitPool(settings.predictor_concurrency,
                    Limits(memory_mb=settings.unit_memory_mb, timeout_s=settings.unit_timeout_s,
                           nice=settings.unit_nice),
                    forkserver_context(PRELOAD), start_model_worker)
    store = SeriesStore(settings.bootstrap_servers or "")  # the series the units point at, read once each

    @app.agent(datasets, concurrency=settings.predictor_concurrency)
    async def run_units(stream: faust.StreamT) -> None:
        async for _event, dataset in decoded(app, stream, DATASETS):
            handling(dataset["request_id"])
            with metrics.seconds.time():
                job = await asyncio.to_thread(job_for, store, dataset)
                if isinstance(job, Job):
                    handling(dataset["request_id"], job.config_json)  # its `verbose`: DEBUG adds `fits` below
                prediction = await answer(pool, job, stopped) if isinstance(job, Job) else job
            # Re-keyed by series: every unit of a series meets the others in one validator partition.
            await send_record(predictions, series_key(dataset["request_id"], dataset["series"]), prediction)
            metrics.produced.labels(PREDICTIONS.name).inc()
            log.info("unit %s/%s %s done: %s", dataset["series"], dataset["unit"]["index"],
                     dataset["unit"]["model"], prediction["error"] or "ok")
            if logged(logging.DEBUG):
                log.debug("%s fits: %s", dataset["series"], fits(prediction))

    @app.task
    async def _start_pool() -> None:
        if settings.unit_timeout_s >= settings.validator_deadline_s:
            log.warning("TIMEX_UNIT_TIMEOUT_S (%g) is not below TIMEX_VALIDATOR_DEADLINE_S (%g): a slow unit's "
                        "series may be decided without it", settings.unit_timeout_s, settings.validator_deadline_s)
        await pool.start()

    @app.on_before_shutdown.connect
    def _stop_pool(*_: object, **__: object) -> None:
        pool.close()
        store.close()

    return app


def main(settings: Settings) -> int:
    return run_worker(build_app(settings), "predictor", settings)
