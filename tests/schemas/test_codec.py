"""Codec: round trips of every record, schema evolution (old writer → new reader), typed decode errors."""

from __future__ import annotations

import copy
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
from tests.plugins.samples import NOW, OLD_REF, OLD_UNIT, SAMPLES
from timex_stream.runtime.records import history_of


def test_every_top_level_record_has_a_sample() -> None:
    nested = {"Forecast", "Unit", "ModelResult", "SeriesRef", "UnitOutcome", "Xcorr", "Candidate",
              "HistoricalPredictions", "RollingAccuracy", "ModelSwitch"}
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
# v6: an answer's history packed; fastavro fills a bytes field's default as the schema's JSON string
_PACKED = {"history_timestamps_us": "", "history_values_f64": ""}
_NEWER = (*_XCORR_KEYS, "historical_predictions", *_PACKED)
_NONE_NEWER = {**dict.fromkeys(_NEWER), **_PACKED}


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


def test_historical_answers_from_before_the_steps_read_with_none() -> None:
    """BestModel v4 (historical predictions without what each step's forecast came from) reads with `steps` empty."""
    old = copy.deepcopy(SAMPLES["BestModel"])
    for model in old["historical_predictions"]["models"].values():
        del model["steps"]
    new = CODEC.decode_as("BestModel", _written_with_history("v4", old, "BestModel"))
    assert all(m["steps"] == [] for m in new["historical_predictions"]["models"].values())
    assert {**new, "historical_predictions": None} == {**old, "historical_predictions": None, **_PACKED}


def test_answers_from_before_the_packed_history_read_it_as_strings() -> None:
    """BestModel v5 (its history as ISO strings) reads with the packed fields empty, and `history_of` reads either."""
    old = {k: v for k, v in SAMPLES["BestModel"].items() if k not in _PACKED}
    new = CODEC.decode_as("BestModel", _written_with_history("v5", old, "BestModel"))
    assert new == {**old, **_PACKED}
    expected = (["2020-01-01T00:00:00.000000"], [3.0])
    assert history_of(new).wire() == history_of(SAMPLES["BestModel"]).wire() == expected


def test_answers_from_before_the_claim_check_carry_their_whole_history() -> None:
    old = {k: v for k, v in SAMPLES["BestModel"].items()
           if k not in ("series_ref", "history_points", "historical_predictions", *_XCORR_KEYS)}
    new = CODEC.decode_as("BestModel", _written_with_history("v1", old, "BestModel"))
    assert new == {**old, "series_ref": None, "history_points": 0, "xcorr": None, "univariate": None,
                   "multivariate": None, "kept": None, "historical_predictions": None, **_PACKED}


def test_progress_from_before_the_charts_reads_without_visualization() -> None:
    old = {k: v for k, v in SAMPLES["Progress"].items() if k != "visualization"}
    assert CODEC.decode_as("Progress", _written_with_history("v1", old, "Progress")) == {**old, "visualization": None}
    before_box_plots = {**SAMPLES["Progress"], "visualization": {"language": "it", "xcorr_graph_threshold": 0.7}}
    assert CODEC.decode_as("Progress", _written_with_history("v2", before_box_plots, "Progress"))["visualization"] == {
        "language": "it", "xcorr_graph_threshold": 0.7, "box_plot_frequency": "1W",
        "aggregate_box_plot_frequency": "weekday"}  # TIMEX's defaults


def test_revisions_from_before_realised_accuracy_read_without_it() -> None:
    added = ("accuracy", "switched", "selected_at", "actual_timestamps", "actual_values")
    old = {k: v for k, v in SAMPLES["ForecastRevision"].items() if k not in added}
    new = CODEC.decode_as("ForecastRevision", _written_with_history("v1", old, "ForecastRevision"))
    assert new == {**old, "accuracy": None, "switched": None, "selected_at": 0, "actual_timestamps": [],
                   "actual_values": []}


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
