"""Records as strict JSON data: Avro timestamps (aware datetimes) → epoch ms, NaN/inf → null, bytes → text.

The one conversion of records to JSON: the gateway's answers and the CLI's `--output json` go through it, so
they show a request the same way."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any


def plain(value: Any) -> Any:
    """A deep copy of `value` that `json.dumps(..., allow_nan=False)` accepts and browsers can parse."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
