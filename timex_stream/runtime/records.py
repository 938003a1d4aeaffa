"""Every record the services build by hand, built here (one field list per record, every field set), typed with
`schemas.records`: what the ingestion, the predictor, the validator, the gateway and the CLI publish.

Records built from the core's results (a Forecast's `to_dict`, the xcorr and historical answers) come from
the core itself; everything else a service sends goes through a builder of this module.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forecasting.series import Tail
from schemas.records import (
    AccuracyRecord,
    BestModelRecord,
    CandidateRecord,
    DatasetRecord,
    FailureRecord,
    ForecastRecord,
    ForecastRequestRecord,
    ForecastRevisionRecord,
    HistoricalPredictionsRecord,
    ModelResultRecord,
    ModelSwitchRecord,
    PredictionRecord,
    ProgressRecord,
    RegressorRefRecord,
    RequestIndexRecord,
    RollingAccuracyRecord,
    SeriesPartRecord,
    SeriesRefRecord,
    StandingRequestRecord,
    UnitOutcomeRecord,
    UnitRecord,
    XcorrRecord,
)
from schemas.topics import unit_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Position:
    """Where a record sits on `configs` (a key-less config's id is derived from it)."""

    partition: int
    offset: int
    timestamp_ms: int



def now_ms() -> int:
    return int(time.time() * 1000)


# --- answers and status (any stage) -------------------------------------------------------------------------

def failure(request_id: str, stage: str, message: str, *, series: str | None = None, model: str | None = None,
            fatal: bool = False, detail: str | None = None) -> FailureRecord:
    return {"request_id": request_id, "stage": stage, "message": message, "series": series, "model": model,
            "fatal": fatal, "detail": detail, "occurred_at": now_ms()}


def progress(request_id: str, stage: str, message: str = "", **fields: Any) -> ProgressRecord:
    """`fields`: any other Progress field (series, series_names, units_done, units_total, current_best, title,
    replay_of, visualization); an unknown one is an error."""
    record: ProgressRecord = {
        "request_id": request_id, "stage": stage, "message": message, "series": None, "series_names": [],
        "units_done": 0, "units_total": 0, "current_best": None, "title": None, "replay_of": None,
        "visualization": None, "at": now_ms()}
    unknown = fields.keys() - record.keys()
    if unknown:
        raise TypeError(f"progress() got fields Progress does not have: {', '.join(sorted(unknown))}")
    return {**record, **fields}  # type: ignore[typeddict-item]


# --- work: datasets and predictions -------------------------------------------------------------------------

def unit_record(spec: Any, index: int, total: int, refit: bool = False) -> UnitRecord:
    """The Unit record of `spec` (a forecasting.units.UnitSpec), number `index` of `total`."""
    return {"model": spec.model, "transformation": spec.transformation, "window": spec.window, "index": index,
            "total": total, "refit": refit, "regressors": list(spec.regressors),
            "historical_end": getattr(spec, "historical_end", 0)}


def marker_unit(index: int, total: int, model: str = "") -> UnitRecord:
    """The Unit of a validator's own marker on `predictions` (a negative `index` says which marker)."""
    return {"model": model, "transformation": "", "window": 0, "index": index, "total": total, "refit": False,
            "regressors": [], "historical_end": 0}


def dataset(request_id: str, series: str, series_total: int, spec: Any, index: int, total: int,
            ref: SeriesRefRecord | None, *, refit: bool = False, more: Sequence[tuple[Any, int]] = ()
            ) -> tuple[str, DatasetRecord]:
    """(key, Dataset) for one unit (`spec`: model, transformation, window, regressors) of the series at `ref` (a
    SeriesRef, see timex_stream.runtime.series_store), with `more` (spec, index) units of the same series run
    with it: the ingestion's plan, the validator's final refits and the units it asks for again."""
    return unit_key(request_id, series, index), {
        "request_id": request_id, "series": series, "series_total": series_total,
        "unit": unit_record(spec, index, total, refit), "more": [unit_record(s, i, total, refit) for s, i in more],
        "ref": ref, "created_at": now_ms()}


def unit_outcome(unit: UnitRecord, *, error: str | None = None, metrics: Mapping[str, float] | None = None,
                 test_forecast: Sequence[float] = (), forecast: ForecastRecord | None = None,
                 fit_seconds: float = 0.0, params: Mapping[str, str] | None = None) -> UnitOutcomeRecord:
    """What one unit produced (a batched Prediction's `more`), or just its `error`."""
    return {"unit": unit, "error": error, "metrics": dict(metrics or {}), "test_forecast": list(test_forecast),
            "forecast": forecast, "fit_seconds": fit_seconds, "params": dict(params or {})}


def prediction(request_id: str, series: str, series_total: int, unit: UnitRecord, *, main_accuracy_estimator: str,
               ref: SeriesRefRecord | None, error: str | None = None, metrics: Mapping[str, float] | None = None,
               test_forecast: Sequence[float] = (), forecast: ForecastRecord | None = None,
               fit_seconds: float = 0.0, params: Mapping[str, str] | None = None,
               history_timestamps: Sequence[str] = (), history_values: Sequence[float] = (),
               more: Sequence[UnitOutcomeRecord] = (), worker: str = "") -> PredictionRecord:
    """A Prediction: a unit's result (the predictor's), or a validator's marker (`marker_unit`, `worker`
    "validator")."""
    return {"request_id": request_id, "series": series, "series_total": series_total, "unit": unit,
            "error": error, "metrics": dict(metrics or {}), "test_forecast": list(test_forecast),
            "forecast": forecast, "fit_seconds": fit_seconds, "params": dict(params or {}),
            "main_accuracy_estimator": main_accuracy_estimator, "ref": ref,
            "history_timestamps": list(history_timestamps), "history_values": list(history_values),
            "more": list(more), "worker": worker}


def units_of(prediction: PredictionRecord) -> list[PredictionRecord]:
    """A batched Prediction as one Prediction per unit (what the validator folds); the history tail stays
    with the first."""
    base: PredictionRecord = {**prediction, "more": []}
    return [base] + [{**base, **outcome, "history_timestamps": [], "history_values": []}  # type: ignore[misc]
                     for outcome in prediction.get("more", [])]


# --- the answer -----------------------------------------------------------------------------------------------

def model_result(model: str, transformation: str, window: int, *, metrics: Mapping[str, float],
                 fit_seconds: float, params: Mapping[str, str], error: str | None,
                 best_of_model: bool) -> ModelResultRecord:
    """One row of a BestModel's comparison."""
    return {"model": model, "transformation": transformation, "window": window, "metrics": dict(metrics),
            "fit_seconds": fit_seconds, "params": dict(params), "error": error, "best_of_model": best_of_model}


def candidate(model: str, transformation: str, *, metrics: Mapping[str, float], forecast: ForecastRecord | None,
              regressors: Sequence[str] = ()) -> CandidateRecord:
    """A BestModel's "univariate"/"multivariate" entry: the best model of one stage."""
    return {"model": model, "transformation": transformation, "metrics": dict(metrics), "forecast": forecast,
            "regressors": list(regressors)}


def best_model(request_id: str, series: str, series_total: int, *, main_accuracy_estimator: str,
               comparison: Sequence[ModelResultRecord], history: Tail, history_points: int,
               series_ref: SeriesRefRecord | None,
               units_done: int, units_total: int, complete: bool, model: str | None = None,
               transformation: str | None = None, window: int | None = None,
               metrics: Mapping[str, float] | None = None, forecast: ForecastRecord | None = None,
               per_model: Mapping[str, ForecastRecord] | None = None,
               historical_predictions: HistoricalPredictionsRecord | None = None, xcorr: XcorrRecord | None = None,
               univariate: CandidateRecord | None = None, multivariate: CandidateRecord | None = None,
               kept: str | None = None) -> BestModelRecord:
    """The answer for one series, decided now (no `model`: every unit failed); `history`: the end of its history,
    for plots (packed: `history_of` reads it back)."""
    stamps_us, values = history.packed()
    return {"request_id": request_id, "series": series, "series_total": series_total, "model": model,
            "transformation": transformation, "window": window, "main_accuracy_estimator": main_accuracy_estimator,
            "metrics": dict(metrics or {}), "forecast": forecast, "per_model": dict(per_model or {}),
            "comparison": list(comparison), "history_timestamps": [], "history_values": [],
            "history_timestamps_us": stamps_us, "history_values_f64": values, "history_points": history_points,
            "series_ref": series_ref,
            "units_done": units_done, "units_total": units_total, "complete": complete,
            "historical_predictions": historical_predictions, "decided_at": now_ms(), "xcorr": xcorr,
            "univariate": univariate, "multivariate": multivariate, "kept": kept}


def history_of(best: Mapping[str, Any]) -> Tail:
    """The end of the history a BestModel record carries: packed since v6, ISO strings before."""
    if best.get("history_timestamps_us") or best.get("history_values_f64"):
        return Tail.unpacked(best["history_timestamps_us"], best["history_values_f64"])
    return Tail.from_wire(best.get("history_timestamps") or [], best.get("history_values") or [])


def for_users(best: BestModelRecord) -> dict[str, Any]:
    """A BestModel record as users read it (the gateway's JSON, the CLI's documents, the webapp): its history as
    ISO timestamps and values (`history_timestamps`, `history_values`), not packed."""
    try:
        stamps, values = history_of(best).wire()
    except ValueError as exc:  # a record someone else wrote, valid Avro but not a history: show the rest of it
        log.warning("the answer for %r carries no readable history: %s", best.get("series"), exc)
        stamps, values = [], []
    shown = {k: v for k, v in best.items() if k not in ("history_timestamps_us", "history_values_f64")}
    return {**shown, "history_timestamps": stamps, "history_values": values}


# --- requests, series and the index ---------------------------------------------------------------------------

def forecast_request(request_id: str, config_json: str, submitted_at: int, *, origin: str = "kafka",
                     csv_data: bytes | None = None, replay_of: str | None = None,
                     owner: str | None = None) -> ForecastRequestRecord:
    """A ForecastRequest record (timex_stream.runtime.submit checks and assigns the id;
    timex_stream.runtime.intake reads plain JSON configs into one)."""
    return {"request_id": request_id, "submitted_at": submitted_at, "origin": origin, "config_json": config_json,
            "csv_data": csv_data, "replay_of": replay_of, "owner": owner}


def index_record(request_id: str, where: Position, request: Mapping[str, Any] | None = None) -> RequestIndexRecord:
    """The RequestIndex record of the config at `where` (`request` as `intake.read_request` gave it; None for a
    record that is no config but named a request id, which gets an answer all the same)."""
    request = request or {}
    title = None
    try:
        doc = json.loads(request.get("config_json") or "{}")
        title = doc.get("activity_title") if isinstance(doc, dict) else None
    except (json.JSONDecodeError, RecursionError):
        pass
    submitted_at = as_ms(request.get("submitted_at")) or where.timestamp_ms
    origin = request.get("origin") or "kafka"
    if origin == "kafka" and where.timestamp_ms:  # plain JSON: the broker's time, not the sender's
        submitted_at = where.timestamp_ms
    return {"request_id": request_id, "owner": request.get("owner"),
            "title": title if isinstance(title, str) else None, "replay_of": request.get("replay_of"),
            "origin": origin, "has_csv": bool(request.get("csv_data")), "submitted_at": submitted_at,
            "configs_partition": where.partition, "configs_offset": where.offset, "configs_at": where.timestamp_ms}


def as_ms(value: Any) -> int | None:
    """Avro timestamp-millis come back as aware datetimes; records built here hold ints."""
    if value is None or isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)


def series_part(request_id: str, **fields: Any) -> SeriesPartRecord:
    """A SeriesPart: `fields` set what this part holds (a config, or a chunk of a series); an unknown one is
    an error."""
    record: SeriesPartRecord = {
        "request_id": request_id, "series": None, "config_json": None, "series_total": 0, "chunk": 0, "chunks": 0,
        "points": 0, "frequency": "", "start_us": 0, "timestamps_us": None, "values": b"", "xcorr_json": None,
        "created_at": now_ms()}
    unknown = fields.keys() - record.keys()
    if unknown:
        raise TypeError(f"series_part() got fields SeriesPart does not have: {', '.join(sorted(unknown))}")
    return {**record, **fields}  # type: ignore[typeddict-item]


def regressor_ref(name: str, offsets: Sequence[int]) -> RegressorRefRecord:
    return {"name": name, "offsets": list(offsets)}


def series_ref(partition: int, config_offset: int, offsets: Sequence[int], points: int,
               regressors: Sequence[tuple[str, Sequence[int]]] = (), historical_from: int = 0) -> SeriesRefRecord:
    """`regressors`: (name, offsets of its chunks) of each additional regressor of the series.
    `historical_from`: points known at the first historical prediction step (0: none); with `points` and the
    regressors, what re-plans the series' units (forecasting.historical.plan_all)."""
    return {"partition": partition, "config_offset": config_offset, "offsets": list(offsets), "points": points,
            "regressors": [regressor_ref(name, at) for name, at in regressors], "historical_from": historical_from}


# --- live requests --------------------------------------------------------------------------------------------

ACTIVE, STOPPED = "active", "stopped"


def standing_request(request_id: str, config_json: str, status: str, *, owner: str | None = None,
                     history_csv: bytes | None = None, at: int | None = None) -> StandingRequestRecord:
    """A StandingRequest: a live request's config and status (ACTIVE or STOPPED)."""
    if status not in (ACTIVE, STOPPED):
        raise ValueError(f"status {status!r}: expected {ACTIVE} or {STOPPED}")
    return {"request_id": request_id, "config_json": config_json, "owner": owner, "status": status,
            "history_csv": history_csv, "at": now_ms() if at is None else at}


def forecast_revision(request_id: str, series: str, revision: int, last_timestamp: str, points: int,
                      forecast: ForecastRecord, *, model: str, transformation: str, window: int,
                      params: Mapping[str, str] | None = None, accuracy: RollingAccuracyRecord | None = None,
                      switched: ModelSwitchRecord | None = None, selected_at: int = 0,
                      actual_timestamps: Sequence[str] = (), actual_values: Sequence[float] = ()
                      ) -> ForecastRevisionRecord:
    """A ForecastRevision: built from the inputs only (no clock), so a revision computed twice is equal."""
    return {"request_id": request_id, "series": series, "revision": revision, "last_timestamp": last_timestamp,
            "points": points, "forecast": forecast, "model": model, "transformation": transformation,
            "window": window, "params": dict(params or {}), "accuracy": accuracy, "switched": switched,
            "selected_at": selected_at, "actual_timestamps": list(actual_timestamps),
            "actual_values": [float(v) for v in actual_values]}


def accuracy_record(revision: ForecastRevisionRecord) -> AccuracyRecord | None:
    """The `accuracy` topic's record of a revision (the same numbers, without the forecast); None when the
    revision carries no accuracy."""
    if revision["accuracy"] is None:
        return None
    return {"request_id": revision["request_id"], "series": revision["series"], "revision": revision["revision"],
            "last_timestamp": revision["last_timestamp"], "model": revision["model"],
            "transformation": revision["transformation"], "window": revision["window"],
            "selected_at": revision["selected_at"], "accuracy": revision["accuracy"],
            "switched": revision["switched"]}
