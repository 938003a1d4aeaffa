"""What a client sends: a TIMEX config as a JSON body, or multipart with `config` (file or text) and an
optional `csv` file. Every problem becomes an ApiError naming the field, never a 500."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from forecasting.config import ConfigError, FieldError, TimexConfig, parse_config
from forecasting.data import DataError, load_series
from forecasting.limits import RequestLimits, check_config, check_data
from timex_stream.runtime.submit import name_upload_source

# Kafka's default largest record is 1 MiB; an uploaded CSV travels inside one ForecastRequest (gzip helps).
MAX_BODY_BYTES = 1024 * 1024
ORIGINS = ("gateway", "webapp")


class ApiError(Exception):
    """A 4xx answer: `{"error": ..., "field": ...}` (plus `errors` listing every invalid config field)."""

    def __init__(self, status: int, error: str, field: str | None = None,
                 errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.field, self.errors = status, error, field, errors
        self.headers = headers or {}  # e.g. WWW-Authenticate on a 401, Retry-After on a 429

    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"error": self.error, "field": self.field}
        if self.errors:
            doc["errors"] = self.errors
        return doc


@dataclass
class Submission:
    config: dict[str, Any]
    csv: bytes | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def title(self) -> str | None:
        title = self.config.get("activity_title")
        return title if isinstance(title, str) else None


async def read_submission(request: web.Request, limits: RequestLimits) -> Submission:
    if request.content_type == "multipart/form-data":
        form = await request.post()  # bounded by the app's client_max_size
        config_text = _text(form, "config")
        csv_field = form.get("csv")
        csv = _bytes(form, "csv") if csv_field is not None else None
        filename = getattr(csv_field, "filename", None) or "upload.csv"
        # Parsing the CSV for its limits takes a while: off the event loop.
        return await asyncio.get_running_loop().run_in_executor(None, validate, config_text, csv or None, filename,
                                                                limits)
    if request.content_type in ("application/json", "text/plain", "application/octet-stream"):
        return validate(await request.read(), None, None, limits)
    raise ApiError(415, f"send the config as application/json or multipart/form-data, not "
                        f"'{request.content_type}'", "Content-Type")


def validate(config_text: str | bytes, csv: bytes | None, csv_name: str | None,
             limits: RequestLimits | None = None) -> Submission:
    """The config, and an uploaded CSV, as the ingestion will see them: invalid or past a request limit → 4xx."""
    try:
        doc = json.loads(config_text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the config is not valid JSON: {exc}", "config") from None
    except RecursionError:
        raise ApiError(400, "the config is nested too deeply to be a TIMEX config", "config") from None
    if not isinstance(doc, dict):
        raise ApiError(400, f"the config must be a JSON object, not {type(doc).__name__}", "config")
    if csv is not None:
        name_upload_source(doc, csv_name)
    try:
        parsed = parse_config(doc)
    except ConfigError as exc:
        raise _invalid(exc.errors) from None
    limits = limits or RequestLimits()
    if over_limits := check_config(parsed.config, limits) or _check_upload(parsed.config, csv, limits):
        raise _invalid(over_limits)
    return Submission(doc, csv, parsed.warnings)


def _check_upload(config: TimexConfig, csv: bytes | None, limits: RequestLimits) -> list[FieldError]:
    """The data limits of an uploaded CSV (at most the body limit, so cheap to load). Data that do not load
    pass: the ingestion reports what is wrong with them, as for a download."""
    if csv is None:
        return []
    try:
        series = load_series(config, csv).series
    except (DataError, ValueError):
        return []
    return check_data(config, series, limits)


def _invalid(errors: list[FieldError]) -> ApiError:
    """400 naming the first field (the upload is `csv`, a config field `config.<field>`) and listing all."""
    first = errors[0]
    return ApiError(400, str(first), _api_field(first.field),
                    [{"field": e.field, "message": e.message} for e in errors])


def _api_field(name: str) -> str:
    if name == "data":
        return "csv"
    return f"config.{name}" if name else "config"


def is_dry_run(request: web.Request) -> bool:
    return request.query.get("dry_run", "").lower() in ("1", "true", "yes")


def origin_of(request: web.Request) -> str:
    origin = request.query.get("origin", "gateway")
    if origin not in ORIGINS:
        raise ApiError(400, f"origin must be one of {', '.join(ORIGINS)}", "origin")
    return origin


def _text(form: MultiDictProxy[Any], name: str) -> str:
    if name not in form:
        raise ApiError(400, f"the multipart body has no '{name}' part", name)
    try:
        return _bytes(form, name).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, f"'{name}' is not UTF-8 text", name) from None


def _bytes(form: MultiDictProxy[Any], name: str) -> bytes:
    value = form[name]
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return value.file.read()  # aiohttp FileField
