"""Codec: round trips of every record, schema evolution (old writer → new reader), typed decode errors."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from fastavro import schemaless_writer
from fastavro.schema import load_schema

from schemas.codec import (
    CODEC,
    MAGIC,
    SCHEMA_DIR,
    CorruptPayloadError,
    DecodeError,
    NotAvroError,
    UnknownSchemaError,
    WrongRecordError,
)

NOW = dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)
OLD_UNIT = {"model": "arima", "transformation": "log", "window": 40, "index": 3, "total": 12, "refit": False}
UNIT = {**OLD_UNIT, "regressors": ["temperature"], "historical_end": 0}
FORECAST = {"timestamps": ["1700-01-01T00:00:00", "1701-01-01T00:00:00"], "yhat": [1.5, 2.5],
            "lower_80": [1.0, 2.0], "upper_80": [2.0, 3.0], "lower_95": None, "upper_95": None}
OLD_REF = {"partition": 3, "config_offset": 17, "offsets": [18, 19], "points": 120_000}
REF = {**OLD_REF, "regressors": [{"name": "temperature", "offsets": [16]}], "historical_from": 0}
HISTORICAL = {"initial_index": 8, "delta": 2, "best_model": "arima",
              "models": {"arima": {"timestamps": ["2020-01-01T00:00:00", "2020-02-01T00:00:00"],
                                   "forecast": [1.0, None], "actual": [1.5, 2.0],
                                   "metrics": {"mae": 0.5, "rmse": 0.5}, "error": "failed at one step"}}}
METRICS = {"MAE": 0.5, "MSE": 0.25, "RMSE": 0.5, "AM": 0.1, "SD": 0.2}

SAMPLES: dict[str, dict] = {
    "ForecastRequest": {"request_id": "r1", "submitted_at": NOW, "origin": "cli", "config_json": '{"a": 1}',
                        "csv_data": b"date,x\n2020-01-01,1\n", "replay_of": "r0", "owner": "alice"},
    "Dataset": {"request_id": "r1", "series": "x", "series_total": 2, "unit": UNIT, "more": [{**UNIT, "index": 4}],
                "ref": REF, "created_at": NOW},
    "SeriesPart": {"request_id": "r1", "series": "x", "config_json": None, "series_total": 2, "chunk": 1,
                   "chunks": 3, "points": 120_000, "frequency": "YS-JAN", "start_us": -8_520_336_000_000_000,
                   "timestamps_us": None, "values": b"\x00" * 16, "created_at": NOW, "xcorr_json": None},
    "Prediction": {"request_id": "r1", "series": "x", "series_total": 2, "unit": UNIT, "error": None,
                   "metrics": METRICS, "test_forecast": [1.0, 2.0], "forecast": FORECAST, "fit_seconds": 0.01,
                   "params": {"order": "(1,1,0)"}, "main_accuracy_estimator": "MAE", "ref": REF,
                   "history_timestamps": ["2020-01-01T00:00:00"], "history_values": [3.0], "worker": "h/1",
                   "more": [{"unit": {**UNIT, "index": 4}, "error": "failed", "metrics": {}, "test_forecast": [],
                             "forecast": None, "fit_seconds": 0.5, "params": {}}]},
    "BestModel": {"request_id": "r1", "series": "x", "series_total": 2, "model": "arima", "transformation": "log",
                  "window": 40, "main_accuracy_estimator": "MAE", "metrics": METRICS, "forecast": FORECAST,
                  "per_model": {"arima": FORECAST},
                  "comparison": [{"model": "arima", "transformation": "log", "window": 40, "metrics": METRICS,
                                  "fit_seconds": 0.2, "params": {}, "error": None, "best_of_model": True}],
                  "history_timestamps": ["2020-01-01T00:00:00"], "history_values": [3.0], "history_points": 1,
                  "series_ref": REF, "units_done": 12,
                  "units_total": 12, "complete": True, "historical_predictions": HISTORICAL, "decided_at": NOW,
                  "xcorr": {"max_lags": 1, "threshold": 0.5, "modes": {"pearson": {"y": [0.1, 0.2, 0.9]}},
                            "lags": {"pearson": [-1, 0, 1]}, "regressors": ["y"]},
                  "univariate": {"model": "arima", "transformation": "log", "metrics": METRICS, "forecast": FORECAST,
                                 "regressors": []},
                  "multivariate": {"model": "arima", "transformation": "log", "metrics": METRICS,
                                   "forecast": FORECAST, "regressors": ["y"]},
                  "kept": "multivariate"},
    "Failure": {"request_id": "r1", "stage": "config", "message": "model_parameters.models: unknown model 'x'",
                "series": None, "model": "x", "fatal": True, "detail": None, "occurred_at": NOW},
    "Progress": {"request_id": "r1", "stage": "accepted", "message": "", "series": None,
                 "series_names": ["x", "y"], "units_done": 0, "units_total": 24, "current_best": None,
                 "title": "demo", "replay_of": None, "visualization": {"language": "it", "xcorr_graph_threshold": 0.7},
                 "at": NOW},
    "RequestIndex": {"request_id": "r1", "owner": "alice", "title": "demo", "replay_of": None, "origin": "gateway",
                     "has_csv": False, "submitted_at": NOW, "configs_partition": 2, "configs_offset": 17,
                     "configs_at": NOW},
    "Observation": {"series": "sales", "timestamp": NOW, "value": 3.5},
}


def test_every_top_level_record_has_a_sample() -> None:
    nested = {"Forecast", "Unit", "ModelResult", "SeriesRef", "UnitOutcome", "Xcorr", "Candidate",
              "HistoricalPredictions"}
    assert set(CODEC.current) - nested == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip(name: str) -> None:
    data = CODEC.encode(name, SAMPLES[name])
    assert data[:2] == MAGIC
    got_name, record = CODEC.decode(data)
    assert got_name == name
    assert record == SAMPLES[name]


def test_fingerprint_is_crc64_avro_of_canonical_form() -> None:
    # The Avro spec's example: the CRC-64-AVRO fingerprint of "int" is 0x7275d51a3f395c8f (little-endian).
    from fastavro.schema import fingerprint

    assert fingerprint('"int"', "CRC-64-AVRO") == "8f5c393f1ad57572"
    data = CODEC.encode("Failure", SAMPLES["Failure"])
    assert data[2:10] == CODEC.current["Failure"].fingerprint


def _written_with_history(version: str, record: dict, name: str = "ForecastRequest") -> bytes:
    """`record` single-object encoded by schemas/history/timex.<name>.<version>.avsc, as an old
    producer wrote it (its own fingerprint in the header)."""
    from fastavro.schema import fingerprint, to_parsing_canonical_form

    old = load_schema(str(SCHEMA_DIR / "history" / f"timex.{name}.{version}.avsc"), _write_hint=False)
    buf = io.BytesIO()
    buf.write(MAGIC + bytes.fromhex(fingerprint(to_parsing_canonical_form(old), "CRC-64-AVRO")))
    schemaless_writer(buf, old, record)
    return buf.getvalue()


def test_old_writer_new_reader() -> None:
    """A ForecastRequest written with the v1 schema (no origin/csv/replay_of/owner) reads with today's defaults."""
    data = _written_with_history("v1", {"request_id": "old", "submitted_at": NOW, "config_json": "{}"})
    assert data[2:10] in CODEC.by_fingerprint and data[2:10] != CODEC.current["ForecastRequest"].fingerprint
    name, record = CODEC.decode(data)
    assert name == "ForecastRequest"
    assert record == {"request_id": "old", "submitted_at": NOW, "config_json": "{}", "origin": "kafka",
                      "csv_data": None, "replay_of": None, "owner": None}


def test_v2_writer_without_owner_reads_as_ownerless() -> None:
    """Records on `configs` from before the owner field (v2) stay readable: no owner, everything else kept."""
    v2 = {k: v for k, v in SAMPLES["ForecastRequest"].items() if k != "owner"}
    data = _written_with_history("v2", v2)
    assert data[2:10] != CODEC.current["ForecastRequest"].fingerprint
    assert CODEC.decode_as("ForecastRequest", data) == {**v2, "owner": None}


def test_units_from_before_the_claim_check_read_without_a_ref() -> None:
    """Datasets and Predictions v1 carried the series and config; they read with `ref` null (the predictor
    answers such a unit with an error saying so, replay skips it with a warning)."""
    v1 = {"request_id": "r0", "series": "x", "series_total": 1, "unit": OLD_UNIT, "frequency": "MS",
          "timestamps": ["2020-01-01T00:00:00"], "values": [1.0], "config_json": "{}", "created_at": NOW}
    assert CODEC.decode_as("Dataset", _written_with_history("v1", v1, "Dataset")) == {
        "request_id": "r0", "series": "x", "series_total": 1,
        "unit": {**OLD_UNIT, "regressors": [], "historical_end": 0}, "more": [], "ref": None, "created_at": NOW}
    old = {k: v for k, v in SAMPLES["Prediction"].items() if k not in ("ref", "more")}
    old.update(config_json="{}", frequency="MS")
    new = CODEC.decode_as("Prediction", _written_with_history("v1", old, "Prediction"))
    assert new["ref"] is None and new["history_values"] == [3.0] and new["more"] == [] and "config_json" not in new


_XCORR_KEYS = ("xcorr", "univariate", "multivariate", "kept")
_NEWER = (*_XCORR_KEYS, "historical_predictions")
_NONE_NEWER = dict.fromkeys(_NEWER)


def test_answers_from_before_xcorr_decode_without_it() -> None:
    old = {k: v for k, v in SAMPLES["BestModel"].items() if k not in _NEWER}
    new = CODEC.decode_as("BestModel", _written_with_history("v3", old, "BestModel"))
    assert new == {**old, **_NONE_NEWER}
    part = {k: v for k, v in SAMPLES["SeriesPart"].items() if k != "xcorr_json"}
    assert CODEC.decode_as("SeriesPart", _written_with_history("v1", part, "SeriesPart"))["xcorr_json"] is None


def test_records_from_before_regressors_read_as_univariate() -> None:
    """Datasets, Predictions and BestModels v2 (before regressors and historical predictions) read with neither."""
    no_regressors = {**OLD_REF, "regressors": [], "historical_from": 0}
    unit = {**OLD_UNIT, "regressors": [], "historical_end": 0}
    old = {**SAMPLES["Dataset"], "unit": OLD_UNIT, "more": [{**OLD_UNIT, "index": 4}], "ref": OLD_REF}
    assert CODEC.decode_as("Dataset", _written_with_history("v2", old, "Dataset")) == {
        **old, "unit": unit, "more": [{**unit, "index": 4}], "ref": no_regressors}
    old = {**SAMPLES["Prediction"], "unit": OLD_UNIT, "more": [], "ref": OLD_REF}
    new = CODEC.decode_as("Prediction", _written_with_history("v2", old, "Prediction"))
    assert new == {**old, "unit": unit, "ref": no_regressors}
    old = {k: v for k, v in SAMPLES["BestModel"].items() if k not in _NEWER}
    new = CODEC.decode_as("BestModel", _written_with_history("v2", {**old, "series_ref": OLD_REF}, "BestModel"))
    assert new == {**old, "series_ref": no_regressors, **_NONE_NEWER}


def test_answers_from_before_the_claim_check_carry_their_whole_history() -> None:
    old = {k: v for k, v in SAMPLES["BestModel"].items()
           if k not in ("series_ref", "history_points", "historical_predictions", *_XCORR_KEYS)}
    new = CODEC.decode_as("BestModel", _written_with_history("v1", old, "BestModel"))
    assert new == {**old, "series_ref": None, "history_points": 0, "xcorr": None, "univariate": None,
                   "multivariate": None, "kept": None, "historical_predictions": None}


def test_progress_from_before_the_charts_reads_without_visualization() -> None:
    old = {k: v for k, v in SAMPLES["Progress"].items() if k != "visualization"}
    assert CODEC.decode_as("Progress", _written_with_history("v1", old, "Progress")) == {**old, "visualization": None}


def test_history_schemas_are_self_contained_and_distinct() -> None:
    for path in (SCHEMA_DIR / "history").glob("*.avsc"):
        doc = json.loads(path.read_text())
        assert doc["name"] in CODEC.current, path.name
    assert len(CODEC.by_fingerprint) == len(CODEC.current) + len(list((SCHEMA_DIR / "history").glob("*.avsc")))


@pytest.mark.parametrize("payload, error", [
    (b'{"input_parameters": {}}', NotAvroError),
    (b"", NotAvroError),
    (None, NotAvroError),
    (MAGIC + b"\x00\x01", CorruptPayloadError),
    (MAGIC + b"\xde\xad\xbe\xef\x00\x00\x00\x00" + b"body", UnknownSchemaError),
])
def test_foreign_payloads_give_typed_errors(payload: bytes | None, error: type[DecodeError]) -> None:
    with pytest.raises(error):
        CODEC.decode(payload)


def test_corrupted_body_gives_typed_error() -> None:
    data = bytearray(CODEC.encode("Prediction", SAMPLES["Prediction"]))
    truncated = bytes(data[: len(data) // 2])
    with pytest.raises(CorruptPayloadError):
        CODEC.decode(truncated)
    with pytest.raises(CorruptPayloadError):
        CODEC.decode(bytes(data) + b"\x00extra")


def test_wrong_record_type_is_refused() -> None:
    data = CODEC.encode("Failure", SAMPLES["Failure"])
    with pytest.raises(WrongRecordError, match="expected a Prediction record, got Failure"):
        CODEC.decode_as("Prediction", data)
    assert CODEC.decode_as("Failure", data)["stage"] == "config"


def test_schema_files_parse_as_json_with_docs() -> None:
    for path in Path(SCHEMA_DIR).glob("*.avsc"):
        assert json.loads(path.read_text())["doc"], path.name
