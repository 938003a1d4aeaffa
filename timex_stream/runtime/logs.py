"""Structured logs: one JSON object per line with the service name and, when known, the request id."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from pathlib import Path

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# The level of the request being handled (its config's `verbose`, TIMEX's key): None, the service's level.
request_level_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("request_level", default=None)
# This project's own loggers: a request's `verbose` sets their level while it is handled; the libraries' lines
# (a broker's trouble) keep the service's level whatever a request asks.
OWN_LOGGERS = ("forecasting", "timex", "ingestion", "predictor", "validator", "gateway", "live", "webapp")
REDACTED = "[redacted]"
_secrets: set[str] = set()  # tokens and passwords this process knows: never written to a log line


def redact_in_logs(*secrets: str | None) -> None:
    """Replace these strings by [redacted] in every log line from now on (message and traceback)."""
    _secrets.update(s for s in secrets if s)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: one secret may contain another
        text = text.replace(secret, REDACTED)
    return text


def handling(request_id: str | None, config_json: str | None = None) -> None:
    """From here on (this task's context), log lines are `request_id`'s, at its config's `verbose` level."""
    request_id_var.set(request_id)
    request_level_var.set(verbose_level(config_json))


def verbose_level(config_json: str | None) -> int | None:
    """The config's `verbose` (a level name: forecasting.config checks it) as a logging level; None when absent
    or unreadable (a bad config is answered by its failure, not here)."""
    try:
        verbose = json.loads(config_json).get("verbose") if config_json else None
    except (ValueError, AttributeError, RecursionError):  # not JSON, not an object, nested too deeply
        return None
    level = logging.getLevelName(verbose.upper()) if isinstance(verbose, str) else None
    return level if isinstance(level, int) else None


_service_level = logging.INFO  # configure_logging's level


def logged(level: int) -> bool:
    """Whether this project's line at `level` is written now: the handled request's level, else the service's
    (for a line whose arguments cost something to compute)."""
    wanted = request_level_var.get()
    return level >= (_service_level if wanted is None else wanted)


class RequestLevel(logging.Filter):
    """Lets a record of this project's loggers through when `logged`; other records passed their logger's own
    level already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(OWN_LOGGERS) or logged(record.levelno)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            doc["request_id"] = redact(str(rid))
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, default=str)


def configure_logging(service: str, level: str = "INFO", log_file: Path | None = None) -> None:
    """Root logger → JSON lines on stderr (and `log_file` if given). Idempotent."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    global _service_level
    _service_level = logging.getLevelName(level)
    for h in handlers:
        h.setFormatter(JsonFormatter(service))
        h.addFilter(RequestLevel())
        root.addHandler(h)
    root.setLevel(level)
    for own in OWN_LOGGERS:  # their records reach the handlers, whose filter applies the request's level
        logging.getLogger(own).setLevel(logging.DEBUG)
    # Chatty libraries: their INFO lines are noise in a service log, unless we are debugging.
    library_level = logging.INFO if level == "DEBUG" else max(logging.WARNING, logging.getLevelName(level))
    for noisy in ("aiokafka", "faust", "mode", "cmdstanpy", "prophet", "urllib3"):
        logging.getLogger(noisy).setLevel(library_level)
    # Except a table's recovery (a dozen lines a rebalance: the changelogs' highwaters, where reading starts, when
    # it ends): a recovery that never ends stops the service's work, and its WARNINGs alone do not say why.
    logging.getLogger("faust.tables.recovery").setLevel(level)
