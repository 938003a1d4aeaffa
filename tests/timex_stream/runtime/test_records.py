"""The record builders (`timex_stream.runtime.records`): every record they build sets every field of its schema (one
field list, nothing left to the schema's defaults) and survives the codec unchanged."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from forecasting.series import Tail
from forecasting.units import UnitSpec
from schemas import decode_as, encode
from schemas.records import BY_RECORD
from timex_stream.runtime import records
from timex_stream.runtime.intake import Position

SPEC = UnitSpec("naive", "none", 12, ("x",))
REF = records.series_ref(0, 1, [2, 3], 40, regressors=[("x", [4])], historical_from=30)
UNIT = records.unit_record(SPEC, 0, 2)
FORECAST = {"timestamps": ["2020-01-01"], "yhat": [1.0], "lower_80": None, "upper_80": None, "lower_95": [0.5],
            "upper_95": [1.5]}


STAMPS = ["1969-12-31T00:00:00.000000", "2020-01-01T12:30:00.000001"]  # before the epoch; to the microsecond
TAIL = Tail.from_wire(STAMPS, [-0.0, 1.5])


def built() -> dict[str, Any]:
    """One record of each kind a builder makes, by Avro name."""
    outcome = records.unit_outcome(records.unit_record(SPEC, 1, 2), metrics={"MAE": 1.0}, test_forecast=[1.0],
                                   forecast=FORECAST, fit_seconds=0.1, params={"p": "1"})
    row = records.model_result("naive", "none", 12, metrics={"MAE": 1.0}, fit_seconds=0.1, params={},
                               error=None, best_of_model=True)
    return {
        "Failure": records.failure("r1", "model", "it broke", series="s", model="naive", fatal=True),
        "Progress": records.progress("r1", "ingested", series_names=["s"], units_total=2,
                                     visualization={"language": "it", "xcorr_graph_threshold": 0.5,
                                                    "box_plot_frequency": "3M",
                                                    "aggregate_box_plot_frequency": "month"}),
        "Dataset": records.dataset("r1", "s", 1, SPEC, 0, 2, REF, more=[(SPEC, 1)])[1],
        "Prediction": records.prediction("r1", "s", 1, UNIT, main_accuracy_estimator="mae", ref=REF, more=[outcome],
                                         metrics={"MAE": 2.0}, forecast=FORECAST, worker="host/1"),
        "BestModel": records.best_model(
            "r1", "s", 1, main_accuracy_estimator="mae", comparison=[row], history=TAIL, history_points=40,
            series_ref=REF, units_done=2, units_total=2, complete=True,
            model="naive", transformation="none", window=12, metrics={"MAE": 1.0}, forecast=FORECAST,
            per_model={"naive": FORECAST},
            univariate=records.candidate("naive", "none", metrics={"MAE": 1.0}, forecast=FORECAST)),
        "ForecastRequest": records.forecast_request("r1", "{}", 5, origin="cli", csv_data=b"a,b\n"),
        "RequestIndex": records.index_record("r1", Position(0, 7, 9), {"config_json": '{"activity_title": "t"}',
                                                                      "origin": "gateway", "submitted_at": 5}),
        "SeriesPart": records.series_part("r1", series="s", chunk=0, chunks=1, points=2, values=b"\0" * 16),
    }


@pytest.mark.parametrize("name", sorted(built()))
def test_a_built_record_sets_every_field_and_round_trips(name: str) -> None:
    record = built()[name]
    assert set(record) == set(typing.get_type_hints(BY_RECORD[name]))  # every field, no other
    back = decode_as(name, encode(name, record))
    assert {k: v for k, v in back.items() if k not in ("occurred_at", "at", "created_at", "decided_at",
                                                       "submitted_at", "configs_at")} == \
        {k: v for k, v in record.items() if k not in ("occurred_at", "at", "created_at", "decided_at",
                                                      "submitted_at", "configs_at")}


def test_a_marker_is_a_whole_prediction_and_units_of_splits_a_batch() -> None:
    marker = records.prediction("r1", "s", 1, records.marker_unit(-1, 3), main_accuracy_estimator="mae", ref=None,
                                error="deadline", worker="validator")
    assert set(marker) == set(typing.get_type_hints(BY_RECORD["Prediction"]))
    assert set(marker["unit"]) == set(typing.get_type_hints(BY_RECORD["Unit"]))
    batch = built()["Prediction"]
    first, second = records.units_of(batch)
    assert first["metrics"] == {"MAE": 2.0} and first["more"] == [] and second["unit"]["index"] == 1
    assert second["metrics"] == {"MAE": 1.0} and second["history_values"] == []


def test_an_answer_carries_its_history_packed_and_users_read_it_as_before() -> None:
    best = decode_as("BestModel", encode("BestModel", built()["BestModel"]))
    assert best["history_timestamps"] == [] and len(best["history_timestamps_us"]) == 8 * 2
    shown = records.for_users(best)
    assert shown["history_timestamps"] == ["1969-12-31T00:00:00.000000", "2020-01-01T12:30:00.000001"]
    assert shown["history_values"] == [-0.0, 1.5] and "history_values_f64" not in shown
    # a record written before v6 carries ISO strings: read the same way
    old = {**best, "history_timestamps_us": b"", "history_values_f64": b"", "history_timestamps": STAMPS,
           "history_values": [-0.0, 1.5]}
    assert records.history_of(old).wire() == (STAMPS, [-0.0, 1.5]) == records.history_of(best).wire()


def test_an_answer_whose_packed_history_does_not_read_is_shown_without_it() -> None:
    best = {**built()["BestModel"], "history_timestamps_us": b"\0" * 7}  # valid Avro bytes, not 8-byte stamps
    with pytest.raises(ValueError):
        records.history_of(best)
    shown = records.for_users(best)
    assert shown["history_timestamps"] == shown["history_values"] == [] and shown["model"] == "naive"


def test_builders_refuse_fields_their_record_does_not_have() -> None:
    with pytest.raises(TypeError, match="seriez"):
        records.progress("r1", "accepted", seriez="s")
    with pytest.raises(TypeError, match="chunkz"):
        records.series_part("r1", chunkz=1)
