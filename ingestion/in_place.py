"""The fast lane's side in the ingestion: a small request's units (timex_stream.runtime.fast_lane.eligible) run on
the service's thread when they are a few of closed-form models (fast_lane.on_the_loop), else in a worker process of
the service's own, a bounded unit pool as the predictor's (memory cap, time limit TIMEX_FAST_LANE_TIMEOUT_S for all
of a request's units, in one call), and become the Predictions a predictor would send for its Datasets: the same
`job_for` and `predict`, on the stored records where they landed. Each series is then decided here as the validator
decides a series whose one Prediction holds all its units and refits (`timex_stream.runtime.decide.decide_whole`):
its failures, best-models record and "series_done" go out in the validator's place. Should a Prediction not be
whole, the Predictions go to the validator instead; any failure before sends the Datasets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from schemas import Topic, series_key
from schemas.records import PredictionRecord
from schemas.topics import BEST_MODELS, FAILURES, PREDICTIONS, PROGRESS
from timex_stream.runtime.decide import decide_whole
from timex_stream.runtime.fan_out import Landed, Outcome
from timex_stream.runtime.fast_lane import LandedStore, on_the_loop, warm_up
from timex_stream.runtime.logs import logged
from timex_stream.runtime.pool import Limits, UnitPool, forkserver_context, start_model_worker
from timex_stream.runtime.settings import Settings
from timex_stream.runtime.unit_work import Job, fits, job_for, predict_all

log = logging.getLogger("ingestion")
# What the fork server imports once (as the predictor's): its worker starts with the model libraries loaded.
PRELOAD = ["timex_stream.runtime.orphan_guard", "timex_stream.runtime.pool", "timex_stream.runtime.unit_work"]


class _NotHere(Exception):
    """The units did not run here (its cause says why): the Datasets go to the predictors."""


class InPlace:
    """`answer` is the `InPlace` callback of timex_stream.runtime.fan_out.publish."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        # One worker: the gate keeps a request small; of the configs in hand (ingestion.service.IN_HAND), one runs
        # its units there while the others are ingested or sent. Not niced (TIMEX_UNIT_NICE): these units are the
        # request's per-event work, which the ingestion waits for.
        self.pool = UnitPool(1, Limits(memory_mb=settings.unit_memory_mb, timeout_s=settings.fast_lane_timeout_s),
                             forkserver_context(PRELOAD), start_model_worker)
        self.answered = Counter("timex_requests_in_place", "requests whose units ran in the ingestion (fast lane)",
                                registry=registry)
        self.on_loop = Counter("timex_requests_in_place_on_loop",
                               "fast-lane requests whose closed-form units ran on the ingestion's thread",
                               registry=registry)
        self.sent_on = Counter("timex_requests_in_place_failed",
                               "fast-lane requests sent to the predictors after all", registry=registry)

    async def start(self) -> None:
        """Start the pool's worker and load the closed-form models' libraries here (fast_lane.warm_up)."""
        await self.pool.start()
        warm_up()

    def close(self) -> None:
        self.pool.close()

    async def answer(self, out: Outcome, landing: asyncio.Future[list[Landed]]) -> list[tuple[Topic, str, Any]] | None:
        """Each series' failures, best-models record and "series_done" (topic, key, record); or its Prediction
        for the validator, should one not be whole; or None: the Datasets go to the predictors. The units run
        while `landing` (where `out.stored` lands) is awaited: they read the records from memory, at stand-in
        positions, and their Predictions then point where the records landed, as the Datasets would have."""
        stand_in = [(0, i) for i in range(len(out.stored))]
        held = LandedStore(out.stored, stand_in)
        jobs = [job_for(held, dataset) for _, dataset in out.datasets(stand_in)]  # the gate keeps them small
        if unread := [job for job in jobs if not isinstance(job, Job)]:
            return self._not_here(unread[0]["error"])
        try:
            predictions = await self._predictions(out, jobs, landing)
        except _NotHere as exc:
            return self._not_here(exc.__cause__)
        landed = await landing  # done: the units' run awaited it
        store = LandedStore(out.stored, landed)
        for prediction, (_, dataset) in zip(predictions, out.datasets(landed), strict=True):
            prediction["ref"] = dataset["ref"]  # the one field that depends on where the records landed
        rid, decided = out.request_id, []
        for prediction in predictions:
            if logged(logging.DEBUG):  # the request's `verbose`, as the predictor logs it
                log.debug("%s fits: %s", prediction["series"], fits(prediction))
            whole = decide_whole(prediction, store.config_json(prediction["ref"]), store)
            if whole is None:
                log.warning("fast lane: a Prediction of %s is not whole: the validator decides", rid)
                self.answered.inc()
                return [(PREDICTIONS, series_key(rid, p["series"]), p) for p in predictions]
            decided += [(FAILURES, rid, f) for f in whole.failures]
            decided += [(BEST_MODELS, rid, whole.best_model), (PROGRESS, rid, whole.progress)]
        self.answered.inc()
        return decided

    async def _predictions(self, out: Outcome, jobs: list[Job], landing: asyncio.Future[list[Landed]]
                           ) -> list[PredictionRecord]:
        """Every series' Prediction, once `landing` is done too. Closed-form models' units run on this thread
        (fast_lane.on_the_loop: their bound is the gate's); the parts' produce request leaves after them, which
        its 1 ms linger mostly waited anyway. Other units run in the pool while the broker stores the parts,
        every series in one call (one round trip, one time limit for the request). _NotHere for a limit (time,
        memory, crashes) or a bug."""
        if on_the_loop(out.planned):
            try:
                predictions = predict_all(jobs)
            except Exception as exc:
                raise _NotHere from exc
            await landing
            self.on_loop.inc()
            return predictions
        running = asyncio.ensure_future(self.pool.run(f"{out.request_id}/in-place", predict_all, jobs))
        try:
            await landing
        except BaseException:
            running.cancel()  # the request fails as a whole (the caller's error); the pool's run goes on to its end
            raise
        try:
            return await running
        except Exception as exc:
            raise _NotHere from exc

    def _not_here(self, why: object) -> None:
        log.warning("fast lane: not answered in place, its units go to the predictors: %s", why)
        self.sent_on.inc()
        return None
