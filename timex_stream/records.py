"""Builders for the records every service publishes (Failure, Progress), so each is made one way."""

from __future__ import annotations

import time
from typing import Any


def now_ms() -> int:
    return int(time.time() * 1000)


def failure(request_id: str, stage: str, message: str, *, series: str | None = None, model: str | None = None,
            fatal: bool = False, detail: str | None = None) -> dict[str, Any]:
    return {"request_id": request_id, "stage": stage, "message": message, "series": series, "model": model,
            "fatal": fatal, "detail": detail, "occurred_at": now_ms()}


def progress(request_id: str, stage: str, message: str = "", **fields: Any) -> dict[str, Any]:
    return {"request_id": request_id, "stage": stage, "message": message, "series": None, "series_names": [],
            "units_done": 0, "units_total": 0, "current_best": None, "title": None, "replay_of": None,
            "at": now_ms(), **fields}
