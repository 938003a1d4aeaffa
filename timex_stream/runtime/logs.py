"""Structured logs: one JSON object per line with the service name and, when known, the request id."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from pathlib import Path

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
REDACTED = "[redacted]"
_secrets: set[str] = set()  # tokens and passwords this process knows: never written to a log line


def redact_in_logs(*secrets: str | None) -> None:
    """Replace these strings by [redacted] in every log line from now on (message and traceback)."""
    _secrets.update(s for s in secrets if s)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: one secret may contain another
        text = text.replace(secret, REDACTED)
    return text


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
    for h in handlers:
        h.setFormatter(JsonFormatter(service))
        root.addHandler(h)
    root.setLevel(level)
    # Chatty libraries: their INFO lines are noise in a service log, unless we are debugging.
    library_level = logging.INFO if level == "DEBUG" else max(logging.WARNING, logging.getLevelName(level))
    for noisy in ("aiokafka", "faust", "mode", "cmdstanpy", "prophet", "urllib3"):
        logging.getLogger(noisy).setLevel(library_level)
    # Except a table's recovery (a dozen lines a rebalance: the changelogs' highwaters, where reading starts, when
    # it ends): a recovery that never ends stops the service's work, and its WARNINGs alone do not say why.
    logging.getLogger("faust.tables.recovery").setLevel(level)
