"""Submit a TIMEX config straight to the `configs` topic (CLI, gateway, replay and tests share this)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from confluent_kafka import Producer

from schemas.keys import check_request_id
from schemas.records import ForecastRequestRecord
from schemas.topics import CONFIGS
from timex_stream.runtime import records
from timex_stream.runtime.kafka import send
from timex_stream.runtime.records import now_ms


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def name_upload_source(config: dict[str, Any], csv_name: str | None) -> None:
    """An uploaded CSV replaces the download, but a TIMEX config still needs a source: name the upload there
    when the config has none (the gateway and the CLI's --csv)."""
    inputs = config.get("input_parameters")
    if isinstance(inputs, dict) and not inputs.get("source_data_url"):
        inputs["source_data_url"] = f"upload:{csv_name or 'upload.csv'}"


def forecast_request(config: dict[str, Any] | str, *, request_id: str | None = None, csv: bytes | None = None,
                     origin: str = "cli", replay_of: str | None = None, owner: str | None = None
                     ) -> ForecastRequestRecord:
    """A ForecastRequest record; a request id given by the caller must be valid (InvalidRequestIdError).
    `owner`: the gateway's authenticated user; None for what reaches Kafka without the gateway."""
    config_json = config if isinstance(config, str) else json.dumps(config)
    rid = check_request_id(request_id) if request_id is not None else new_request_id()
    return records.forecast_request(rid, config_json, now_ms(), origin=origin, csv_data=csv, replay_of=replay_of,
                                    owner=owner)


def submit(producer: Producer, config: dict[str, Any] | str, **kwargs: Any) -> str:
    """Produce a ForecastRequest (`forecast_request`'s arguments) and wait for the broker's ack; returns the
    request id."""
    return send_request(producer, forecast_request(config, **kwargs))


def send_request(producer: Producer, request: ForecastRequestRecord) -> str:
    """Produce a ForecastRequest record and wait for the broker's ack; returns the request id."""
    send(producer, CONFIGS, request["request_id"], request)
    if producer.flush(30) != 0:
        raise TimeoutError("the broker did not acknowledge the request within 30 s")
    return request["request_id"]


def stop_standing(producer: Producer, request_id: str, owner: str | None = None) -> None:
    """End a live request: its standing record, status stopped (the live service stops following it; the last
    revisions stay on `forecasts`). A stopped record carries no config: nothing reads it any more."""
    from schemas.topics import STANDING

    send(producer, STANDING, request_id, records.standing_request(request_id, "", records.STOPPED, owner=owner))
    if producer.flush(30) != 0:
        raise TimeoutError("the broker did not acknowledge the stop within 30 s")
