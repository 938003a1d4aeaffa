"""The Avro records as Python types: one TypedDict per record of `*.avsc` (nested records too), named after it.

What `schemas.decode` gives and `schemas.encode` takes are plain dicts; these say which keys they hold and of
what type, so a signature can name the record it carries. Every field is a key (a decoded record has all of
them; the builders, `timex_stream.runtime.records`, fill all of them); a field whose Avro type is a union with null is
`X | None`. Timestamps (`timestamp-millis`) are ints where a builder made them and aware datetimes where
fastavro read them. tests/schemas/test_record_types.py checks each type against its schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias, TypedDict

TimestampMillis: TypeAlias = int | datetime  # built: epoch ms; decoded: an aware datetime
TimestampMicros: TypeAlias = int | datetime  # built: epoch µs; decoded: an aware datetime


class ForecastRecord(TypedDict):
    timestamps: list[str]
    yhat: list[float]
    lower_80: list[float] | None
    upper_80: list[float] | None
    lower_95: list[float] | None
    upper_95: list[float] | None


class UnitRecord(TypedDict):
    model: str
    transformation: str
    window: int
    index: int
    total: int
    refit: bool
    regressors: list[str]
    historical_end: int


class RegressorRefRecord(TypedDict):
    name: str
    offsets: list[int]


class SeriesRefRecord(TypedDict):
    partition: int
    config_offset: int
    offsets: list[int]
    points: int
    regressors: list[RegressorRefRecord]
    historical_from: int


class UnitOutcomeRecord(TypedDict):
    unit: UnitRecord
    error: str | None
    metrics: dict[str, float]
    test_forecast: list[float]
    forecast: ForecastRecord | None
    fit_seconds: float
    params: dict[str, str]


class PredictionRecord(TypedDict):
    request_id: str
    series: str
    series_total: int
    unit: UnitRecord
    error: str | None
    metrics: dict[str, float]
    test_forecast: list[float]
    forecast: ForecastRecord | None
    fit_seconds: float
    params: dict[str, str]
    main_accuracy_estimator: str
    ref: SeriesRefRecord | None
    history_timestamps: list[str]
    history_values: list[float]
    more: list[UnitOutcomeRecord]
    worker: str


class DatasetRecord(TypedDict):
    request_id: str
    series: str
    series_total: int
    unit: UnitRecord
    more: list[UnitRecord]
    ref: SeriesRefRecord | None
    created_at: TimestampMillis


class ModelResultRecord(TypedDict):
    model: str
    transformation: str
    window: int
    metrics: dict[str, float]
    fit_seconds: float
    params: dict[str, str]
    error: str | None
    best_of_model: bool


class HistoricalStepRecord(TypedDict):
    points_known: int
    transformation: str
    regressors: list[str]


class HistoricalModelRecord(TypedDict):
    timestamps: list[str]
    forecast: list[float | None]
    actual: list[float | None]
    metrics: dict[str, float]
    error: str | None
    steps: list[HistoricalStepRecord]


class HistoricalPredictionsRecord(TypedDict):
    initial_index: int
    delta: int
    models: dict[str, HistoricalModelRecord]
    best_model: str | None


class XcorrRecord(TypedDict):
    max_lags: int
    threshold: float
    modes: dict[str, dict[str, list[float]]]
    lags: dict[str, list[int]]
    regressors: list[str]


class CandidateRecord(TypedDict):
    model: str
    transformation: str
    metrics: dict[str, float]
    forecast: ForecastRecord | None
    regressors: list[str]


class BestModelRecord(TypedDict):
    request_id: str
    series: str
    series_total: int
    model: str | None
    transformation: str | None
    window: int | None
    main_accuracy_estimator: str
    metrics: dict[str, float]
    forecast: ForecastRecord | None
    per_model: dict[str, ForecastRecord]
    comparison: list[ModelResultRecord]
    history_timestamps: list[str]
    history_values: list[float]
    history_timestamps_us: bytes
    history_values_f64: bytes
    history_points: int
    series_ref: SeriesRefRecord | None
    units_done: int
    units_total: int
    complete: bool
    historical_predictions: HistoricalPredictionsRecord | None
    decided_at: TimestampMillis
    xcorr: XcorrRecord | None
    univariate: CandidateRecord | None
    multivariate: CandidateRecord | None
    kept: str | None


class FailureRecord(TypedDict):
    request_id: str
    stage: str
    message: str
    series: str | None
    model: str | None
    fatal: bool
    detail: str | None
    occurred_at: TimestampMillis


class VisualizationParametersRecord(TypedDict):
    language: str
    xcorr_graph_threshold: float
    box_plot_frequency: str
    aggregate_box_plot_frequency: str


class ProgressRecord(TypedDict):
    request_id: str
    stage: str
    message: str
    series: str | None
    series_names: list[str]
    units_done: int
    units_total: int
    current_best: str | None
    title: str | None
    replay_of: str | None
    visualization: VisualizationParametersRecord | None
    at: TimestampMillis


class ForecastRequestRecord(TypedDict):
    request_id: str
    submitted_at: TimestampMillis
    origin: str
    config_json: str
    csv_data: bytes | None
    replay_of: str | None
    owner: str | None


class RequestIndexRecord(TypedDict):
    request_id: str
    owner: str | None
    title: str | None
    replay_of: str | None
    origin: str
    has_csv: bool
    submitted_at: TimestampMillis
    configs_partition: int
    configs_offset: int
    configs_at: TimestampMillis


class SeriesPartRecord(TypedDict):
    request_id: str
    series: str | None
    config_json: str | None
    series_total: int
    chunk: int
    chunks: int
    points: int
    frequency: str
    start_us: int
    timestamps_us: bytes | None
    values: bytes
    xcorr_json: str | None
    created_at: TimestampMillis


class ObservationRecord(TypedDict):
    series: str
    timestamp: TimestampMicros
    value: float


class StandingRequestRecord(TypedDict):
    request_id: str
    config_json: str
    owner: str | None
    status: str
    history_csv: bytes | None
    at: TimestampMillis


class StepAccuracyRecord(TypedDict):
    step: int
    count: int
    error: float | None
    mae: float | None


class RollingAccuracyRecord(TypedDict):
    estimator: str
    window: int
    scored: int
    error: float | None
    mae: float | None
    validation_error: float | None
    threshold: float | None
    over: int
    steps: list[StepAccuracyRecord]


class ModelSwitchRecord(TypedDict):
    reason: str
    triggered_at: int
    from_model: str
    from_transformation: str
    from_window: int
    old_error: float | None
    new_error: float
    rolling_error: float | None


class ForecastRevisionRecord(TypedDict):
    request_id: str
    series: str
    revision: int
    last_timestamp: str
    points: int
    forecast: ForecastRecord
    model: str
    transformation: str
    window: int
    params: dict[str, str]
    accuracy: RollingAccuracyRecord | None
    switched: ModelSwitchRecord | None
    selected_at: int
    actual_timestamps: list[str]
    actual_values: list[float]


class AccuracyRecord(TypedDict):
    request_id: str
    series: str
    revision: int
    last_timestamp: str
    model: str
    transformation: str
    window: int
    selected_at: int
    accuracy: RollingAccuracyRecord
    switched: ModelSwitchRecord | None


# Avro record name → its type (the test walks this to check every schema has one).
BY_RECORD: dict[str, type] = {cls.__name__.removesuffix("Record"): cls for cls in (
    ForecastRecord, UnitRecord, RegressorRefRecord, SeriesRefRecord, UnitOutcomeRecord, PredictionRecord,
    DatasetRecord, ModelResultRecord, HistoricalStepRecord, HistoricalModelRecord, HistoricalPredictionsRecord,
    XcorrRecord,
    CandidateRecord, BestModelRecord, FailureRecord, VisualizationParametersRecord, ProgressRecord,
    ForecastRequestRecord, RequestIndexRecord, SeriesPartRecord, ObservationRecord,
    StandingRequestRecord, ForecastRevisionRecord, StepAccuracyRecord, RollingAccuracyRecord, ModelSwitchRecord,
    AccuracyRecord)}
