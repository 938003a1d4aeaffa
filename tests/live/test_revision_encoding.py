"""The live service's shortcuts when it sends a revision give what the plain path gives: its encoding names the
unions' branches (live/revisions.py `encode_record`) and must write the bytes `schemas.encode` writes, for every
shape of a revision; its partitioner remembers key hashes and must place every key as aiokafka's does."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner

from live.revisions import KeyHashPartitioner, encode_record
from schemas import encode
from timex_stream.runtime.records import accuracy_record, forecast_revision


def _revision(accuracy: bool, switched: bool, intervals: bool) -> dict:
    rng = random.Random(f"{accuracy}{switched}{intervals}")
    h = 7
    values = [rng.uniform(-1e6, 1e6) for _ in range(h)]
    band = [[v + rng.uniform(-9, 9) for v in values] for _ in range(4)] if intervals else [None] * 4
    forecast = {"timestamps": [f"2026-01-{d:02d}T00:00:00.000000" for d in range(1, h + 1)], "yhat": values,
                "lower_80": band[0], "upper_80": band[1], "lower_95": band[2], "upper_95": band[3]}
    steps = [{"step": s + 1, "count": s, "error": None if s == 0 else rng.random(), "mae": None if s == 0 else 2.0}
             for s in range(h)]
    scores = {"estimator": "mae", "window": 50, "scored": 12, "error": 0.5, "mae": 0.5, "validation_error": None,
              "threshold": None, "over": 0, "steps": steps} if accuracy else None
    switch = {"reason": "drift", "triggered_at": 80, "from_model": "naive", "from_transformation": "none",
              "from_window": 0, "old_error": None, "new_error": 1.5, "rolling_error": 3.25} if switched else None
    return dict(forecast_revision(
        "shop:req", "sales", 90, "2026-01-01T00:00:00", 2, forecast, model="theta", transformation="log", window=30,
        params={"a": "1"}, accuracy=scores, switched=switch, selected_at=80,
        actual_timestamps=["2025-12-31T00:00:00"], actual_values=[rng.random()]))


@pytest.mark.parametrize("accuracy", [True, False])
@pytest.mark.parametrize("switched", [True, False])
@pytest.mark.parametrize("intervals", [True, False])
def test_a_revision_is_encoded_to_the_same_bytes_as_by_the_plain_codec(accuracy: bool, switched: bool,
                                                                        intervals: bool) -> None:
    record = _revision(accuracy, switched, intervals)
    assert encode_record("ForecastRevision", record) == encode("ForecastRevision", record)
    scores = accuracy_record(record)  # type: ignore[arg-type]
    if scores is not None:
        assert encode_record("Accuracy", scores) == encode("Accuracy", scores)
    assert record == _revision(accuracy, switched, intervals)  # the record itself is left as it was


def test_the_partitioner_places_every_key_as_aiokafkas_default_one() -> None:
    ours, theirs = KeyHashPartitioner(keys=50), DefaultPartitioner()  # a small cache: keys leave it and come back
    rng = random.Random(1)
    for i in range(5_000):
        key = rng.randbytes(rng.randint(0, 40)) if i % 3 else f"shop:req/series-{rng.randint(0, 100)}".encode()
        partitions = list(range(rng.randint(1, 12)))
        assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)
    assert ours(None, [0, 1, 2], [1]) == 1  # no key: one of the available partitions, as aiokafka's
