"""Predictor service: consume `datasets` → run the unit in a process pool (never on the event loop) →
produce `predictions`. Several predictor processes share the work through the consumer group."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import faust

from predictor.work import predict, prediction_record, start_worker
from schemas import series_key
from schemas.topics import DATASETS, PREDICTIONS
from timex_stream.faust_app import create_app, decoded, raw_topic, run_worker, send_record
from timex_stream.logs import request_id_var
from timex_stream.settings import Settings

log = logging.getLogger("predictor")
settings = Settings.from_env()
app = create_app("predictor", settings)
metrics = app.timex_metrics  # type: ignore[attr-defined]
datasets, predictions = raw_topic(app, DATASETS), raw_topic(app, PREDICTIONS)
# forkserver: workers fork from a clean process that preloaded the model libraries, not from the event loop.
_ctx = multiprocessing.get_context("forkserver")
_ctx.set_forkserver_preload(["predictor.orphan_guard", "predictor.work"])


def _new_pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=settings.predictor_concurrency, mp_context=_ctx,
                               initializer=start_worker)


pool = _new_pool()


@app.agent(datasets, concurrency=settings.predictor_concurrency)
async def run_units(stream: faust.StreamT) -> None:
    async for _event, dataset in decoded(app, stream, DATASETS):
        request_id_var.set(dataset["request_id"])
        with metrics.seconds.time():
            prediction = await _run(dataset)
        # Re-keyed by series: every unit of a series meets the others in one validator partition.
        await send_record(predictions, series_key(dataset["request_id"], dataset["series"]), prediction)
        metrics.produced.labels(PREDICTIONS.name).inc()
        log.info("unit %s/%s %s done: %s", dataset["series"], dataset["unit"]["index"], dataset["unit"]["model"],
                 prediction["error"] or "ok")


async def _run(dataset: dict) -> dict:
    global pool
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, predict, dataset)
    except BrokenProcessPool:
        # A model took its worker process down (e.g. out of memory): report it, start a fresh pool.
        log.error("a pool process died running %s; restarting the pool", dataset["unit"])
        pool = _new_pool()
        return prediction_record(dataset, error="the model crashed its worker process (out of memory?)")
    except Exception as exc:  # a bug in the core: this unit fails, the service goes on
        log.exception("unit failed")
        return prediction_record(dataset, error=f"internal error: {type(exc).__name__}: {exc}")


@app.on_before_shutdown.connect
def _stop_pool(*_: object, **__: object) -> None:
    pool.shutdown(wait=False, cancel_futures=True)


def main(s: Settings) -> int:
    return run_worker(app, "predictor", s)
