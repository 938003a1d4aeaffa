"""A live request's settings: `input_parameters.source_topic` and `input_parameters.live_parameters`.

    "input_parameters": {"source_topic": "shop-sales", "frequency": "D",
                         "live_parameters": {"start_from": "earliest", "min_points": 50,
                                             "allowed_lateness": 3, "window_points": 10000}}

- `source_topic`: a Kafka topic name (1-249 of A-Z a-z 0-9 . _ -, not "." or ".."), none of the catalogue's
  (schemas.topics) nor the services' internal ones (`timex-...`).
- `start_from`: `earliest` (default: the retained topic is the history), `latest`, or an ISO timestamp
  (the first offset at or after it).
- `min_points` (default 50): points a series needs before its first selection.
- `allowed_lateness` (default 0): how far back an observation may arrive and still count, in grid points
  (an integer) or as a duration (`"2h"`, `"3D"`: rounded up to whole points of the frequency; fixed-length
  frequencies only, as W or MS have no fixed step). Older ones are counted too late (forecasting.live.window).
- `window_points` (default 10,000): points kept per series (a rolling window); at least `min_points`.
- `record_format` (default `auto`): `auto`, `wide`, `long` or `avro` (forecasting.live.observations).
- `accuracy_window` (default 50): actuals kept per horizon step for the rolling error
  (forecasting.live.accuracy); `accuracy_window` × `prediction_lags` at most `MAX_ACCURACY_PAIRS` (memory).
- `reselect_factor` (default 1.5, more than 0) and `reselect_patience` (default 10; 0: never on drift): a
  rolling error above `reselect_factor` × the validation error the model was chosen with, for
  `reselect_patience` actuals in a row, is drift.
- `reselect_every` (default 0: never): also re-select every this many points (0, or at least `min_points`).
  A re-selection runs the whole TIMEX selection on the latest `min_points` points (forecasting.live.reselect).

`add_diff_column` is refused for a live request for now. Errors are the config's `ConfigError`, each naming
its field (`input_parameters.live_parameters.min_points`, ...).
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import Tick
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forecasting.config import ConfigError, FieldError, TimexConfig, _to_field_errors
from forecasting.live.observations import RECORD_FORMATS
from schemas.topics import BY_NAME

_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_PREFIX = "input_parameters.live_parameters"
DEFAULT_WINDOW_POINTS = 10_000
MAX_ACCURACY_PAIRS = 1_000_000  # forecasts kept per series to score (accuracy_window × prediction_lags)
INTERNAL_PREFIX = "timex-"  # the services' own topics (table changelogs, Faust's assignor): schemas.wiring


class LiveParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start_from: str = "earliest"
    min_points: int = Field(default=50, ge=2)
    allowed_lateness: int | str = 0
    window_points: int = Field(default=DEFAULT_WINDOW_POINTS, ge=2)
    record_format: Literal[RECORD_FORMATS] = "auto"  # type: ignore[valid-type]
    accuracy_window: int = Field(default=50, ge=1)
    reselect_factor: float = Field(default=1.5, gt=0, allow_inf_nan=False)
    reselect_patience: int = Field(default=10, ge=0)
    reselect_every: int = Field(default=0, ge=0)

    @field_validator("start_from")
    @classmethod
    def _start(cls, value: str) -> str:
        text = value.strip()
        if text.lower() in ("earliest", "latest"):
            return text.lower()
        try:
            stamp = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise ValueError(f"{value!r}: expected earliest, latest or an ISO timestamp "
                             "(e.g. 2026-01-01T00:00:00Z)") from None
        if stamp is pd.NaT:
            raise ValueError("expected earliest, latest or an ISO timestamp")
        return (stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp).isoformat()

    @field_validator("allowed_lateness", mode="before")
    @classmethod
    def _lateness(cls, value: Any) -> int | str:
        if isinstance(value, bool):
            raise ValueError("expected a number of points or a duration such as \"2h\"")
        if isinstance(value, int):
            if value < 0:
                raise ValueError("must be 0 or more points")
            return value
        if isinstance(value, str):
            try:
                duration = pd.Timedelta(value.strip())
            except ValueError:
                raise ValueError(f"{value!r} is neither a number of points nor a duration (e.g. \"2h\", "
                                 "\"3D\")") from None
            if duration < pd.Timedelta(0):
                raise ValueError("must not be negative")
            return value.strip()
        raise ValueError("expected a number of points or a duration such as \"2h\"")

    @model_validator(mode="after")
    def _window_holds_min_points(self) -> LiveParameters:
        if self.window_points < self.min_points:
            raise ValueError(f"window_points ({self.window_points}) must be at least min_points "
                             f"({self.min_points})")
        if 0 < self.reselect_every < self.min_points:
            raise ValueError(f"reselect_every ({self.reselect_every}) must be 0 (never) or at least min_points "
                             f"({self.min_points}): a re-selection looks at that many new points")
        return self

    def lateness_points(self, frequency: str) -> int:
        """`allowed_lateness` in points of `frequency`."""
        if isinstance(self.allowed_lateness, int):
            return self.allowed_lateness
        offset = to_offset(frequency)
        if not isinstance(offset, Tick):
            raise ConfigError([FieldError(f"{_PREFIX}.allowed_lateness", f"a duration needs a fixed-length "
                               f"frequency; {frequency!r} has none: give a number of points")])
        return math.ceil(pd.Timedelta(self.allowed_lateness) / pd.Timedelta(offset))


class LiveRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    source_topic: str
    live: LiveParameters


def live_request(config: TimexConfig) -> LiveRequest | None:
    """The live settings of `config`, None for an ordinary (one-shot) request; `ConfigError` naming the field."""
    extra = config.input_parameters.model_extra or {}
    topic, raw = extra.get("source_topic"), extra.get("live_parameters")
    if topic is None:
        if raw is not None:
            raise ConfigError([FieldError(_PREFIX, "given without input_parameters.source_topic")])
        return None
    errors: list[FieldError] = []
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic) or topic in (".", ".."):
        errors.append(FieldError("input_parameters.source_topic", f"{topic!r} is not a Kafka topic name (1 to 249 "
                                 "characters: letters, digits and . _ -)"))
    elif topic in BY_NAME or topic.startswith(INTERNAL_PREFIX):
        errors.append(FieldError("input_parameters.source_topic", f"{topic!r} is one of TIMEX Stream's own topics; "
                                 "a live request follows a data topic of yours"))
    if config.input_parameters.add_diff_column:
        errors.append(FieldError("input_parameters.add_diff_column", "not supported for live requests yet"))
    live = None
    if raw is not None and not isinstance(raw, dict):
        errors.append(FieldError(_PREFIX, f"expected an object, got {type(raw).__name__}"))
    else:
        try:
            live = LiveParameters.model_validate(raw or {})
        except ValidationError as exc:
            errors += [FieldError(f"{_PREFIX}.{e.field}" if e.field else _PREFIX, e.message)
                       for e in _to_field_errors(exc)]
    if live is not None:
        pairs = live.accuracy_window * config.model_parameters.prediction_lags
        if pairs > MAX_ACCURACY_PAIRS:
            errors.append(FieldError(f"{_PREFIX}.accuracy_window", f"{live.accuracy_window:,} actuals × "
                                     f"{config.model_parameters.prediction_lags:,} prediction_lags = {pairs:,} "
                                     f"forecasts to keep per series; at most {MAX_ACCURACY_PAIRS:,}"))
    if errors or live is None:
        raise ConfigError(errors)
    return LiveRequest(source_topic=topic, live=live)
