"""What arrives on `configs`: an Avro ForecastRequest, or a plain UTF-8 JSON TIMEX config typed into any
Kafka producer (told apart by the single-object magic bytes 0xC3 0x01).

The ingestion, the gateway's request store and replay all read a configs record here, so they agree on
its request id: the Kafka key, the Avro record's own id, or, for a key-less plain JSON config, an id
derived from where the record sits (`derived_request_id`), the same however often it is delivered.
"""

from __future__ import annotations

import json

from confluent_kafka import Message

from schemas.codec import MAGIC, DecodeError, decode_as
from schemas.keys import request_id_problem
from schemas.records import ForecastRequestRecord
from schemas.topics import CONFIGS
from timex_stream.runtime.records import Position, forecast_request


class NotAConfigError(DecodeError):
    """Neither Avro nor a JSON object: a poison message for the dead-letter topic."""


class BadRequestIdError(DecodeError):
    """A config whose request id could misroute its answer: nothing is planned, the sender is told."""


def position_of(msg: Message) -> Position:
    """Where a confluent-kafka message sits (the gateway, replay and tests read `configs` with that client)."""
    return Position(msg.partition(), msg.offset(), msg.timestamp()[1])


def derived_request_id(where: Position) -> str:
    """`configs-<partition>-<offset>-<timestamp ms>`: a redelivery of the record gets the same id; the
    timestamp keeps ids apart should the topic ever be recreated and its offsets start again."""
    return f"{CONFIGS.name}-{where.partition}-{where.offset}-{where.timestamp_ms}"


def read_request(key: bytes | None, value: bytes | None, where: Position) -> ForecastRequestRecord:
    """→ a ForecastRequest record. Plain JSON gets the Kafka key as request id, or the derived one."""
    if value and value[:2] == MAGIC:
        request = decode_as("ForecastRequest", value)
        _check_id(request["request_id"])
        return request
    try:
        doc = json.loads(value or b"")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAConfigError(f"configs record is neither Avro nor JSON: {exc}") from exc
    except RecursionError:
        raise NotAConfigError("configs record is JSON nested too deeply to be a TIMEX config") from None
    if not isinstance(doc, dict):
        raise NotAConfigError(f"configs record is JSON but not an object (got {type(doc).__name__})")
    request_id = key.decode("utf-8", "replace").strip() if key else ""
    if request_id:
        _check_id(request_id)
    return forecast_request(request_id or derived_request_id(where), json.dumps(doc), where.timestamp_ms)


def _check_id(request_id: str) -> None:
    problem = request_id_problem(request_id)
    if problem:
        raise BadRequestIdError(problem)
