"""schemas.live_writer's hand-written encoders write the bytes fastavro writes (`schemas.encode`), for the schemas
they were written for, on random records of every shape: nulls, empty arrays and maps, unicode, large, negative
and special numbers."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from schemas import CODEC, decode_as, encode
from schemas.live_writer import encode_accuracy, encode_revision
from timex_stream.runtime.records import accuracy_record, forecast_revision

# The schemas the encoders follow field by field (CRC-64-AVRO of the Parsing Canonical Form). A schema change
# fails here: update schemas/live_writer.py to the new fields, then these.
WRITTEN_FOR = {"ForecastRevision": "b6ba84ae1cae321f", "Accuracy": "1d8610cb8dfbe524"}


def test_the_encoders_follow_the_current_schemas() -> None:
    assert {name: CODEC.current[name].fingerprint.hex() for name in WRITTEN_FOR} == WRITTEN_FOR


def _text(rng: random.Random) -> str:
    return "".join(rng.choice("aZ0/:-_ éß€中😀") for _ in range(rng.choice((0, 1, 5, 40, 200))))


def _long(rng: random.Random) -> int:
    return rng.choice((0, 1, 63, 64, -1, -64, -65, 127, 128, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63),
                       rng.randint(-(10**12), 10**12)))


def _int(rng: random.Random) -> int:
    return rng.choice((0, 1, 63, 64, -1, -65, 8191, 8192, 2**31 - 1, -(2**31), rng.randint(-1000, 10**6)))


def _double(rng: random.Random) -> float:
    return rng.choice((0.0, -0.0, 1.5, -2.25, 1e308, 5e-324, math.inf, -math.inf, math.nan, rng.uniform(-1e9, 1e9),
                       rng.random(), float(rng.randint(-5, 5))))


def _opt(rng: random.Random, value: Any) -> Any:
    return None if rng.random() < 0.3 else value


def _doubles(rng: random.Random) -> list[float]:
    return [_double(rng) for _ in range(rng.choice((0, 1, 2, 7, 30)))]


def _record(rng: random.Random) -> dict[str, Any]:
    n = rng.choice((0, 1, 7, 24))
    forecast = {"timestamps": [_text(rng) for _ in range(n)], "yhat": [_double(rng) for _ in range(n)],
                **{f: _opt(rng, _doubles(rng)) for f in ("lower_80", "upper_80", "lower_95", "upper_95")}}
    steps = [{"step": _int(rng), "count": _int(rng), "error": _opt(rng, _double(rng)), "mae": _opt(rng, _double(rng))}
             for _ in range(rng.choice((0, 1, 7, 70)))]
    accuracy = _opt(rng, {"estimator": _text(rng), "window": _int(rng), "scored": _long(rng),
                          **{f: _opt(rng, _double(rng)) for f in ("error", "mae", "validation_error", "threshold")},
                          "over": _int(rng), "steps": steps})
    switched = _opt(rng, {"reason": _text(rng), "triggered_at": _long(rng), "from_model": _text(rng),
                          "from_transformation": _text(rng), "from_window": _int(rng),
                          "old_error": _opt(rng, _double(rng)), "new_error": _double(rng),
                          "rolling_error": _opt(rng, _double(rng))})
    stamps = [_text(rng) for _ in range(rng.choice((0, 1, 3)))]
    return dict(forecast_revision(
        _text(rng), _text(rng), _long(rng), _text(rng), _int(rng), forecast, model=_text(rng),  # type: ignore[arg-type]
        transformation=_text(rng), window=_int(rng),
        params={_text(rng): _text(rng) for _ in range(rng.choice((0, 1, 3)))}, accuracy=accuracy,
        switched=switched, selected_at=_long(rng), actual_timestamps=stamps,
        actual_values=[_double(rng) for _ in stamps]))


@pytest.mark.parametrize("seed", range(4))
def test_random_revisions_and_their_accuracy_encode_to_fastavros_bytes(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        record = _record(rng)
        written = encode_revision(record)
        assert written == encode("ForecastRevision", record)
        assert encode_revision(decode_as("ForecastRevision", written)) == written  # it reads back as written
        scores = accuracy_record(record)  # type: ignore[arg-type]
        if scores is not None:
            assert encode_accuracy(scores) == encode("Accuracy", scores)


def test_an_accuracy_record_encoded_right_after_its_revision_reuses_only_that_revisions_accuracy() -> None:
    # The live service encodes a revision, then its Accuracy (the same dict): its step records are encoded once.
    rng = random.Random(11)
    records = [r for r in (_record(rng) for _ in range(200)) if r["accuracy"] is not None]
    for record, other in zip(records, records[1:], strict=False):
        encode_revision(record)
        assert encode_accuracy(accuracy_record(record)) == encode("Accuracy", accuracy_record(record))  # type: ignore[arg-type]
        encode_revision(record)
        assert encode_accuracy(accuracy_record(other)) == encode("Accuracy", accuracy_record(other))  # type: ignore[arg-type]


def test_a_wrong_type_raises_rather_than_writing_other_bytes() -> None:
    record = _record(random.Random(9))
    with pytest.raises((TypeError, AttributeError)):  # no accuracy remembered stands for a missing one
        encode_accuracy({**accuracy_record({**record, "accuracy": {}}), "accuracy": None})  # type: ignore[arg-type]
    for field, value in (("revision", 1.5), ("series", None), ("window", "7")):
        with pytest.raises((TypeError, ValueError, AttributeError)):
            encode_revision({**record, field: value})
    with pytest.raises(Exception):  # noqa: B017, PT011 (struct.error: not a number)
        encode_revision({**record, "actual_values": ["x"], "actual_timestamps": ["t"]})


def test_remembered_texts_are_bounded_and_encode_as_fastavro() -> None:
    from schemas import live_writer

    long = "é" * (live_writer._TEXT_KEPT_UP_TO + 1)  # more bytes than a remembered text: encoded each time
    for text in ("", "a", "naive-004", "中😀", long):
        record = {**_record(random.Random(1)), "request_id": text, "series": text, "model": text}
        for _ in range(2):  # the second time from the remembered encoding
            assert encode_revision(record) == encode("ForecastRevision", record)
    assert long not in live_writer._TEXTS and "naive-004" in live_writer._TEXTS
    for n in range(live_writer._TEXTS_AT_MOST + 10):
        live_writer._string(f"series-{n}")
    assert len(live_writer._TEXTS) <= live_writer._TEXTS_AT_MOST
