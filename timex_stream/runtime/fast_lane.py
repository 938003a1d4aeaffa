"""The fast lane: a small request's units run where it is ingested, and it is decided there too, so a trivial
request skips the predictor's hop (its `datasets` record, the predictor's pickup and its series read) and the
validator's (its `predictions` record, the validator's pickup, its reads and changelog): issue 22's "fewer hops".

`eligible` is the pure gate the ingestion plans with (`Outcome.in_place`): every series' units fit in one
record, so that record's Prediction also carries each model's final refit (timex_stream.runtime.unit_work);
cheap models only; no feature whose units need more than the series (historical steps, cross-correlation,
additional regressors); at most `max_work` points × units in all. Such a request's Prediction is the one a
predictor would send for the same Dataset (the same `job_for` and `predict`, on the same stored bytes, read
here from where they landed instead of from the broker), and each series is decided from it as the validator
decides it (timex_stream.runtime.decide.decide_whole): the same best-models, progress and failures. A config
delivered again after a crash is answered once by the ingestion's own markers (ingestion.answered). Anything
that goes wrong here sends the Datasets instead.

`on_the_loop` says where the units run. At most LOOP_UNITS units of closed-form models and transformations
(forecasting.units.CLOSED_FORM_MODELS, forecasting.transformations.CLOSED_FORM_TRANSFORMATIONS: a slice and a
repeat, no search) run on the ingestion's own thread, with their final refits (one a model and series: never
more fits than the units). Their time and memory follow from that count, the gate's points and the request's
horizon (0.9 ms for a trivial request's 5 units on 1,000 points; 4.7 ms for 30 on 312 points, 5.5-6.0 with a
horizon of 1,000; TIMEX_MAX_HORIZON_RATIO and the answer's record size bound the horizon), so a trivial
request skips the worker's round trip (pickling both ways, two process wake-ups: 1.1-1.3 ms of CPU in all,
measured). Any other request runs in the ingestion's unit pool, under its time and memory limits: 10 short
series of 20 closed-form units each would hold the thread 31 ms, the other configs in hand and the producer
waiting behind them. `warm_up` loads these models' libraries at the ingestion's start (statsforecast: 0.4 s),
which the first request on the thread would otherwise wait for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecasting.config import TimexConfig
from forecasting.models import get_model_class
from forecasting.transformations import CLOSED_FORM_TRANSFORMATIONS
from forecasting.units import CHEAP_MODELS, CLOSED_FORM_MODELS, batches
from timex_stream.runtime.fan_out import Landed
from timex_stream.runtime.series_store import SeriesStore


def work(planned: Sequence[Any]) -> int:
    """Points × units of a request's planned series (`fan_out.Planned`): a bound of what its validation units fit
    (each fits at most its series; the final refits add one fit per model)."""
    return sum(p.points * len(p.units) for p in planned)


def eligible(config: TimexConfig, planned: Sequence[Any], max_work: int) -> bool:
    """Whether a request planned as `planned` is answered in place (see the module's docstring)."""
    if max_work <= 0 or not planned:
        return False
    if config.xcorr_parameters or config.additional_regressors or config.historical_prediction_parameters:
        return False
    for p in planned:
        if any(u.model not in CHEAP_MODELS or u.regressors or u.historical_end for u in p.units):
            return False
        if len(batches(p.units, p.points)) != 1:  # the Prediction carries the final refits only then
            return False
    return work(planned) <= max_work


LOOP_UNITS = 32


def on_the_loop(planned: Sequence[Any]) -> bool:
    """Whether an eligible request's units run on the ingestion's thread rather than in its pool (see the
    module's docstring)."""
    units = [u for p in planned for u in p.units]
    return len(units) <= LOOP_UNITS and all(
        u.model in CLOSED_FORM_MODELS and u.transformation in CLOSED_FORM_TRANSFORMATIONS for u in units)


def warm_up() -> None:
    """Fit and forecast each closed-form model once on a few points (see the module's docstring)."""
    y = pd.Series(np.arange(1.0, 25.0), index=pd.date_range("2000-01-01", periods=24, freq="MS"))
    for name in sorted(CLOSED_FORM_MODELS):
        get_model_class(name)(season_length=12).fit(y).predict(3)


class LandedStore(SeriesStore):
    """A request's SeriesParts held where the broker stored them: what a predictor would read at the Datasets'
    refs, without reading it back."""

    def __init__(self, stored: Sequence[tuple[str, dict[str, Any]]], landed: Sequence[Landed]) -> None:
        super().__init__("")
        if len(stored) != len(landed):
            raise ValueError(f"{len(landed)} positions for {len(stored)} stored records")
        self.held = {at: record for at, (_, record) in zip(landed, stored, strict=True)}

    def _read(self, partition: int, wanted: list[int]) -> dict[int, dict[str, Any]]:
        return {o: self.held[(partition, o)] for o in wanted if (partition, o) in self.held}
