"""Source-topic records -> observations: the three formats, the config's selection and renames, and every
kind of bad record refused with where and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from forecasting.live.observations import MAX_RECORD_BYTES, BadObservation, Observation, ObservationReader
from schemas.codec import CODEC
from tests.plugins.core_series import make_config

DAY = pd.Timestamp("2026-01-01")


def reader(record_format: str = "auto", **input_parameters: object) -> ObservationReader:
    return ObservationReader(make_config(input_parameters={"index_column_name": "date", **input_parameters}),
                             record_format)


def js(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_wide_row_gives_one_observation_per_series() -> None:
    got = reader().read(None, js({"date": "2026-01-01", "sales": 3.0, "visitors": 12, "empty": None}))
    assert got == [Observation("sales", DAY, 3.0), Observation("visitors", DAY, 12.0)]


def test_wide_row_numeric_text_is_read_as_a_csv_cell() -> None:
    assert reader().read(None, js({"date": "2026-01-01", "sales": " 3.5"})) == [Observation("sales", DAY, 3.5)]


def test_long_record_with_series_field_or_key() -> None:
    r = reader()
    assert r.read(None, js({"series": "sales", "timestamp": "2026-01-01", "value": 3})) == \
        [Observation("sales", DAY, 3.0)]
    assert r.read(b"sales", js({"timestamp": "2026-01-01T00:00:00Z", "value": 4.0})) == \
        [Observation("sales", DAY, 4.0)]
    # The field wins over a (partitioning) key.
    assert r.read(b"shop-1", js({"series": "sales", "timestamp": "2026-01-01", "value": 1}))[0].series == "sales"


def test_timestamp_offsets_are_converted_to_utc() -> None:
    got = reader().read(b"s", js({"timestamp": "2026-01-01T03:00:00+02:00", "value": 1}))
    assert got[0].timestamp == pd.Timestamp("2026-01-01T01:00:00")


def test_a_wide_row_whose_date_column_is_timestamp_stays_wide() -> None:
    got = reader(index_column_name="timestamp").read(b"k", js({"timestamp": "2026-01-01", "value": 2}))
    assert got == [Observation("value", DAY, 2.0)]


def test_avro_observation() -> None:
    data = CODEC.encode("Observation", {"series": "sales", "timestamp": datetime(2026, 1, 1, 6, tzinfo=UTC),
                                        "value": 2.5})
    got = reader().read(None, data)
    assert got == [Observation("sales", pd.Timestamp("2026-01-01T06:00"), 2.5)]
    assert got[0].timestamp.tzinfo is None


def test_column_selection_and_renames_apply_as_to_a_csv() -> None:
    r = reader(columns_to_load_from_url="date,sales", timeseries_names={"sales": "Sales (EUR)"})
    assert r.read(None, js({"date": "2026-01-01", "sales": 3, "visitors": 12})) == \
        [Observation("Sales (EUR)", DAY, 3.0)]
    assert r.read(b"visitors", js({"timestamp": "2026-01-01", "value": 1})) == []
    assert r.read(b"sales", js({"timestamp": "2026-01-01", "value": 1}))[0].series == "Sales (EUR)"


def test_selection_parameters_keep_rows_and_dates_as_for_a_csv() -> None:
    config = make_config(input_parameters={"index_column_name": "date"},
                         selection_parameters={"column_name_selection": "shop", "value_selection": "A",
                                               "init_datetime": "2026-01-02"})
    r = ObservationReader(config)
    assert r.read(None, js({"date": "2026-01-03", "shop": "A", "sales": 1})) == \
        [Observation("sales", pd.Timestamp("2026-01-03"), 1.0)]
    assert r.read(None, js({"date": "2026-01-03", "shop": "B", "sales": 1})) == []
    assert r.read(None, js({"date": "2026-01-01", "shop": "A", "sales": 1})) == []


@pytest.mark.parametrize("key, value, where, reason", [
    (None, b"", "value", "empty"),
    (None, b"{not json", "value", "not JSON"),
    (None, b"\xff\xfe", "value", "not UTF-8"),
    (None, b"[1, 2]", "value", "expected a JSON object, got list"),
    (None, b'{"date": "2026-01-01", "sales": NaN}', "value", "not a finite number"),
    (None, b'{"date": "2026-01-01", "sales": 1e400}', "value.sales", "not a finite number"),
    (None, js({"date": "2026-01-01", "sales": "abc"}), "value.sales", "not a number"),
    (None, js({"date": "2026-01-01", "sales": True}), "value.sales", "expected a number, got bool"),
    (None, js({"date": "2026-01-01", "sales": [1]}), "value.sales", "expected a number, got list"),
    (None, js({"day": "2026-01-01", "sales": 1}), "value", "no date column 'date'"),
    (None, js({"date": "2026-01-01"}), "value", "no value column"),
    (None, js({"date": "yesterday", "sales": 1}), "value.date", "cannot read 'yesterday' as a date"),
    (None, js({"date": 20260101, "sales": 1}), "value.date", "expected a date as a string"),
    (None, js({"series": 3, "timestamp": "2026-01-01", "value": 1}), "value.series", "expected a string"),
    (None, js({"series": "s", "timestamp": "2026-01-01", "value": {}}), "value.value", "expected a number"),
    (b"\xff", js({"timestamp": "2026-01-01", "value": 1}), "key", "not UTF-8"),
    (None, CODEC.encode("Failure", {"request_id": "r", "stage": "config", "message": "x",
                                    "occurred_at": datetime(2026, 1, 1, tzinfo=UTC)}),
     "value", "not an Avro Observation"),
    (None, b"\xc3\x01" + b"\x00" * 8, "value", "not an Avro Observation"),
])
def test_bad_records_say_where_and_why(key: bytes | None, value: bytes, where: str, reason: str) -> None:
    with pytest.raises(BadObservation) as caught:
        reader().read(key, value)
    assert caught.value.where == where
    assert reason in caught.value.reason, caught.value.reason


def test_forced_long_format_without_series_names_the_key() -> None:
    with pytest.raises(BadObservation, match="^key: no series"):
        reader("long").read(None, js({"timestamp": "2026-01-01", "value": 1}))


@pytest.mark.parametrize("year", [1, 2263, 9999])
def test_an_avro_timestamp_outside_the_nanosecond_range_is_refused(year: int) -> None:
    data = CODEC.encode("Observation", {"series": "s", "timestamp": datetime(year, 1, 1, tzinfo=UTC), "value": 1.0})
    with pytest.raises(BadObservation, match="value.timestamp: .* outside the dates a series may have"):
        reader().read(None, data)


def test_non_finite_avro_value_is_refused() -> None:
    data = CODEC.encode("Observation", {"series": "s", "timestamp": datetime(2026, 1, 1, tzinfo=UTC),
                                        "value": float("inf")})
    with pytest.raises(BadObservation, match="value.value: not a finite number"):
        reader().read(None, data)


def test_oversized_record_is_refused_before_parsing() -> None:
    big = b'{"date": "2026-01-01", "s": 1, "pad": "' + b"x" * MAX_RECORD_BYTES + b'"}'
    with pytest.raises(BadObservation, match="at most"):
        reader().read(None, big)


def test_unknown_record_format_is_refused() -> None:
    with pytest.raises(ValueError, match="record_format"):
        reader("csv")


@pytest.mark.parametrize("text", ["2026-01-01", "2026-01-01T10:00", "2026-01-01 10:00:00", "2026-01-01T10:00:00Z",
                                  "2026-01-01T10:00:00+02:00", "2026-01-01T10:00:00.123456789-0530",
                                  "1500-01-01", "2026-02-30", "01/02/2026"])
def test_a_timestamp_is_read_as_the_csv_reads_its_dates(text: str) -> None:
    # ISO timestamps take a fast path (no format inference): the same instants, units and refusals.
    from forecasting.data import DataError, parse_dates

    try:
        expected = pd.Timestamp(parse_dates(pd.Series([text]), None, "date")[0])
    except (DataError, ValueError):
        with pytest.raises(BadObservation):
            reader().read(b"s", js({"timestamp": text, "value": 1}))
        return
    got = reader().read(b"s", js({"timestamp": text, "value": 1}))[0].timestamp
    assert got == expected and got.unit == expected.unit
