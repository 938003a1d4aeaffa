"""Answer one Dataset with its Prediction, whatever the unit does: a unit stopped by a limit (memory, time,
crashes) or a bug in the core becomes a Prediction whose `error` says so in plain words; the validator then
reports the model (a model-stage Failure once every unit of the model failed)."""

from __future__ import annotations

import logging

from prometheus_client import Counter

from schemas.records import PredictionRecord
from schemas.topics import unit_key
from timex_stream.runtime.pool import UnitLimitError, UnitPool
from timex_stream.runtime.unit_work import Job, predict, prediction_record

log = logging.getLogger("predictor")


async def answer(pool: UnitPool, job: Job, stopped: Counter | None = None) -> PredictionRecord:
    """The Prediction for `job`'s dataset; `stopped` counts units stopped by a limit, by limit."""
    dataset = job.dataset
    # Keyed like the record: a unit sent again while it still runs (stall repair, redelivery) runs once.
    key = unit_key(dataset["request_id"], dataset["series"], dataset["unit"]["index"])
    try:
        return await pool.run(key, predict, job)
    except UnitLimitError as exc:
        if stopped is not None:
            stopped.labels(exc.limit).inc()
        log.error("unit %s (%s) stopped: %s", key, dataset["unit"]["model"], exc)
        return prediction_record(dataset, error=str(exc))
    except Exception as exc:  # a bug in the core: this unit fails, the service goes on
        log.exception("unit %s failed", key)
        return prediction_record(dataset, error=f"internal error: {type(exc).__name__}: {exc}")
