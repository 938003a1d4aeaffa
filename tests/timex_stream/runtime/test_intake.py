"""Reading a `configs` record: Avro or plain JSON, the request id it gets, and what is refused."""

from __future__ import annotations

import json

import pytest

from timex_stream.runtime.intake import BadRequestIdError, NotAConfigError, Position, derived_request_id, read_request
from timex_stream.runtime.submit import forecast_request

HERE = Position(partition=2, offset=1041, timestamp_ms=1_764_400_000_123)
CONFIG = {"activity_title": "t", "input_parameters": {}, "model_parameters": {}}


def test_keyless_json_gets_the_same_derived_id_on_every_delivery() -> None:
    value = json.dumps(CONFIG).encode()
    first, again = read_request(None, value, HERE), read_request(None, value, HERE)
    assert first["request_id"] == again["request_id"] == derived_request_id(HERE) == "configs-2-1041-1764400000123"
    assert first["submitted_at"] == HERE.timestamp_ms and first["origin"] == "kafka"
    other = read_request(None, value, Position(2, 1042, HERE.timestamp_ms))
    assert other["request_id"] != first["request_id"]


def test_the_key_is_the_request_id_and_must_be_safe() -> None:
    value = json.dumps(CONFIG).encode()
    assert read_request(b" my-id ", value, HERE)["request_id"] == "my-id"
    for bad in (b"a/b", b"a b", b"x" * 1000, b"\xff\xfe"):
        with pytest.raises(BadRequestIdError, match="not valid"):
            read_request(bad, value, HERE)


def test_avro_request_ids_are_checked_too() -> None:
    from schemas import encode

    record = forecast_request(CONFIG) | {"request_id": "a/b"}
    with pytest.raises(BadRequestIdError, match="'a/b'"):
        read_request(b"a/b", encode("ForecastRequest", record), HERE)


@pytest.mark.parametrize("value", [b"", b"\x00\x01garbage", b"[1, 2]", b"{not json", b"[" * 100_000,
                                   "é".encode("latin-1")])
def test_what_is_no_config_is_refused(value: bytes) -> None:
    with pytest.raises(NotAConfigError):
        read_request(b"k", value, HERE)
