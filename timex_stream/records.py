"""Builders for records more than one service publishes (Failure, Progress, Dataset), so each is made one way."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from schemas.topics import unit_key


def now_ms() -> int:
    return int(time.time() * 1000)


def failure(request_id: str, stage: str, message: str, *, series: str | None = None, model: str | None = None,
            fatal: bool = False, detail: str | None = None) -> dict[str, Any]:
    return {"request_id": request_id, "stage": stage, "message": message, "series": series, "model": model,
            "fatal": fatal, "detail": detail, "occurred_at": now_ms()}


def progress(request_id: str, stage: str, message: str = "", **fields: Any) -> dict[str, Any]:
    return {"request_id": request_id, "stage": stage, "message": message, "series": None, "series_names": [],
            "units_done": 0, "units_total": 0, "current_best": None, "title": None, "replay_of": None,
            "at": now_ms(), **fields}


def dataset(request_id: str, series: str, series_total: int, spec: Any, index: int, total: int,
            ref: dict[str, Any], *, refit: bool = False, more: Sequence[tuple[Any, int]] = ()
            ) -> tuple[str, dict[str, Any]]:
    """(key, Dataset) for one unit (`spec`: model, transformation, window, regressors) of the series at `ref` (a
    SeriesRef, see timex_stream.series_store), with `more` (spec, index) units of the same series run
    with it: the ingestion's plan, the validator's final refits and the units it asks for again."""
    return unit_key(request_id, series, index), {
        "request_id": request_id, "series": series, "series_total": series_total,
        "unit": unit_record(spec, index, total, refit), "more": [unit_record(s, i, total, refit) for s, i in more],
        "ref": ref, "created_at": now_ms()}


def unit_record(spec: Any, index: int, total: int, refit: bool = False) -> dict[str, Any]:
    """The Unit record of `spec` (a forecasting.units.UnitSpec), number `index` of `total`."""
    return {"model": spec.model, "transformation": spec.transformation, "window": spec.window, "index": index,
            "total": total, "refit": refit, "regressors": list(spec.regressors),
            "historical_end": getattr(spec, "historical_end", 0)}


def units_of(prediction: dict[str, Any]) -> list[dict[str, Any]]:
    """A batched Prediction as one Prediction per unit (what the validator folds); the history tail stays
    with the first."""
    base = {**prediction, "more": []}
    return [base] + [{**base, **outcome, "history_timestamps": [], "history_values": []}
                     for outcome in prediction.get("more", [])]
