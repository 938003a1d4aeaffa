"""The live service's two records per observation, a ForecastRevision and its Accuracy, Avro-encoded by hand:
the bytes `schemas.encode` writes (single-object header + body), in under a third of fastavro's time (fastavro
walks the parsed schema for every datum: a revision with intervals and seven step records 38 → 12 µs, its
accuracy record 23 → 6 µs, even with live/revisions.py's union branches named for fastavro).

Written for the current schemas' fields in their order; tests/schemas/test_live_writer.py pins the schemas'
fingerprints and compares the bytes with fastavro's on many random records (nulls, empty arrays, unicode, large
and negative numbers): a schema change fails it there, never silently here. Types are not checked beyond what
the encoding itself needs (the records come from timex_stream.runtime.records' builders): a wrong type raises
(TypeError, struct.error, ...) as fastavro would, possibly another exception.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.codec import CODEC, MAGIC

_HEADER = {name: MAGIC + CODEC.current[name].fingerprint for name in ("ForecastRevision", "Accuracy")}
_DOUBLE = struct.Struct("<d").pack
_DOUBLES: dict[int, Any] = {}  # array length → its Struct's pack
_VARINTS_UP_TO = 8192
_NULL, _SOME = b"\x00", b"\x02"  # union branch 0 (null), branch 1
# A step record whose step and count are 0..63 (one zigzag byte each: 2n) and whose error and mae are both set
# (the usual one): one pack, not four encodings.
_STEP = struct.Struct("<BBBdBd").pack
# Encoded texts: a stream's revisions repeat theirs (request id, series, model, the steps' timestamps); a dict
# look-up costs a tenth of encoding one. Only short texts, and the dict starts again when full (bounded memory).
_TEXTS: dict[str, bytes] = {}
_TEXTS_AT_MOST, _TEXT_KEPT_UP_TO = 16_384, 128
# A revision's RollingAccuracy as encoded by `encode_revision`, for its Accuracy record, which the live service
# encodes next from the same dict (timex_stream.runtime.records.accuracy_record shares it): the seven step records
# encoded once, not twice. Held by identity and for that one next record only; the records are never changed
# once built.
_NOTHING = object()  # no accuracy remembered (no record is this object)
_LAST_ACCURACY: list[Any] = [_NOTHING, b""]


def _varint(n: int) -> bytes:
    """An Avro int/long: zigzag, then a little-endian base-128 varint."""
    z = ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_VARINTS = [_varint(n) for n in range(_VARINTS_UP_TO)]  # 0..8191: one or two bytes, encoded once


def _long(n: int) -> bytes:
    """An Avro int/long (`_varint`), of a small non-negative one from the table."""
    if 0 <= n < _VARINTS_UP_TO:
        return _VARINTS[n]
    return _varint(n)


def _string(s: str) -> bytes:
    out = _TEXTS.get(s)
    if out is None:
        raw = s.encode()
        out = _long(len(raw)) + raw
        if len(raw) <= _TEXT_KEPT_UP_TO:
            if len(_TEXTS) >= _TEXTS_AT_MOST:
                _TEXTS.clear()
            _TEXTS[s] = out
    return out


def _opt_double(value: float | None) -> bytes:
    return _NULL if value is None else _SOME + _DOUBLE(value)


def _doubles(values: Sequence[float]) -> bytes:
    """An array of doubles: one block of all the items, then the 0 that ends it (fastavro's blocks)."""
    n = len(values)
    if not n:
        return _NULL
    pack = _DOUBLES.get(n)
    if pack is None:
        pack = _DOUBLES[n] = struct.Struct(f"<{n}d").pack
    return _long(n) + pack(*values) + _NULL


def _strings(values: Sequence[str]) -> bytes:
    if not values:
        return _NULL
    return _long(len(values)) + b"".join([_string(s) for s in values]) + _NULL


def _string_map(values: Mapping[str, str]) -> bytes:
    if not values:
        return _NULL
    return _long(len(values)) + b"".join([_string(k) + _string(v) for k, v in values.items()]) + _NULL


def _rolling_accuracy(acc: Mapping[str, Any]) -> bytes:
    if acc is _LAST_ACCURACY[0]:
        encoded: bytes = _LAST_ACCURACY[1]
        _LAST_ACCURACY[0], _LAST_ACCURACY[1] = _NOTHING, b""
        return encoded
    steps = acc.get("steps", ())
    parts = [_string(acc["estimator"]), _long(acc["window"]), _long(acc["scored"]), _opt_double(acc.get("error")),
             _opt_double(acc.get("mae")), _opt_double(acc.get("validation_error")),
             _opt_double(acc.get("threshold")), _long(acc.get("over", 0))]
    if steps:
        parts.append(_long(len(steps)))
        parts += [_step(s) for s in steps]
    parts.append(_NULL)
    return b"".join(parts)


def _step(s: Mapping[str, Any]) -> bytes:
    step, count, error, mae = s["step"], s["count"], s.get("error"), s.get("mae")
    if error is not None and mae is not None and 0 <= step < 64 and 0 <= count < 64:
        return _STEP(step << 1, count << 1, 2, error, 2, mae)
    return _long(step) + _long(count) + _opt_double(error) + _opt_double(mae)


def _opt_switch(switch: Mapping[str, Any] | None) -> bytes:
    if switch is None:
        return _NULL
    return b"".join((_SOME, _string(switch["reason"]), _long(switch["triggered_at"]), _string(switch["from_model"]),
                     _string(switch["from_transformation"]), _long(switch["from_window"]),
                     _opt_double(switch.get("old_error")), _DOUBLE(switch["new_error"]),
                     _opt_double(switch.get("rolling_error"))))


def _opt_doubles(values: Sequence[float] | None) -> bytes:
    return _NULL if values is None else _SOME + _doubles(values)


def _forecast(f: Mapping[str, Any]) -> bytes:
    return b"".join((_strings(f["timestamps"]), _doubles(f["yhat"]), _opt_doubles(f.get("lower_80")),
                     _opt_doubles(f.get("upper_80")), _opt_doubles(f.get("lower_95")),
                     _opt_doubles(f.get("upper_95"))))


def encode_revision(r: Mapping[str, Any]) -> bytes:
    """`schemas.encode("ForecastRevision", r)`, the same bytes."""
    accuracy = r.get("accuracy")
    encoded = None
    if accuracy is not None:
        encoded = _rolling_accuracy(accuracy)
        _LAST_ACCURACY[0], _LAST_ACCURACY[1] = accuracy, encoded
    return b"".join((
        _HEADER["ForecastRevision"], _string(r["request_id"]), _string(r["series"]), _long(r["revision"]),
        _string(r["last_timestamp"]), _long(r["points"]), _forecast(r["forecast"]), _string(r["model"]),
        _string(r["transformation"]), _long(r["window"]), _string_map(r.get("params", {})),
        _NULL if encoded is None else _SOME + encoded, _opt_switch(r.get("switched")),
        _long(r.get("selected_at", 0)), _strings(r.get("actual_timestamps", ())),
        _doubles(r.get("actual_values", ()))))


def encode_accuracy(r: Mapping[str, Any]) -> bytes:
    """`schemas.encode("Accuracy", r)`, the same bytes."""
    return b"".join((
        _HEADER["Accuracy"], _string(r["request_id"]), _string(r["series"]), _long(r["revision"]),
        _string(r["last_timestamp"]), _string(r["model"]), _string(r["transformation"]), _long(r["window"]),
        _long(r.get("selected_at", 0)), _rolling_accuracy(r["accuracy"]), _opt_switch(r.get("switched"))))
