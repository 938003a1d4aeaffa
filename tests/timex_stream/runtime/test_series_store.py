"""The claim check on the real broker: a series crosses Kafka once, in chunks that stay well under the record
limit, and comes back exactly, by position, read once per cache."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Producer

from schemas import encode
from schemas.topics import SERIES
from timex_stream.runtime.kafka import send
from timex_stream.runtime.series_store import (
    CHUNK_POINTS,
    SeriesMissingError,
    SeriesStore,
    config_part,
    history,
    parts,
    series_ref,
)


def _publish(producer_: Producer, records: list[tuple[str, dict]]) -> list[tuple[int, int]]:
    landed: dict[int, tuple[int, int]] = {}
    for i, (key, record) in enumerate(records):
        def delivered(err: object, msg: object, i: int = i) -> None:
            assert err is None, err
            landed[i] = (msg.partition(), msg.offset())  # type: ignore[attr-defined]
        send(producer_, SERIES, key, record, on_delivery=delivered)
    assert producer_.flush(30) == 0
    return [landed[i] for i in range(len(records))]


def test_a_long_series_travels_in_chunks_and_comes_back_exactly(kafka_bootstrap: str, producer_: Producer) -> None:
    rid = f"long-{uuid.uuid4().hex[:8]}"
    n = 2 * CHUNK_POINTS + 123
    rng = np.random.default_rng(4)
    s = pd.Series(rng.normal(size=n), index=pd.date_range("2020-01-01", periods=n, freq="5min"), name="a/b c")
    stored = [config_part(rid, '{"x": 1}'), *parts(rid, "a/b c", 1, s)]
    assert len(stored) == 4 and [r["chunk"] for _, r in stored[1:]] == [0, 1, 2]
    # Regular timestamps are regenerated from start + frequency: a chunk is its values and little else.
    assert all(r["timestamps_us"] is None for _, r in stored[1:])
    assert max(len(encode("SeriesPart", r)) for _, r in stored) < 8 * CHUNK_POINTS + 1_000 < 1_000_000
    positions = _publish(producer_, stored)
    assert len({p for p, _ in positions}) == 1  # a request's records share a partition
    ref = series_ref(positions[0][0], positions[0][1], [o for _, o in positions[1:]], n)

    store = SeriesStore(kafka_bootstrap)
    try:
        back = store.series(ref, "a/b c")
        pd.testing.assert_series_equal(back, s)
        assert store.config_json(ref) == '{"x": 1}'
        reads = store.reads
        store.series(ref, "a/b c")
        assert store.reads == reads >= 4  # the second read came from the cache
        # The end of it comes from the last chunks only (the last one holds 123 points here).
        pd.testing.assert_series_equal(store.tail(ref, "a/b c", 100), s.iloc[-100:])
        pd.testing.assert_series_equal(store.tail(ref, "a/b c", CHUNK_POINTS), s.iloc[-CHUNK_POINTS:])
        best = {"series": "a/b c", "series_ref": ref, "history_timestamps": [], "history_values": []}
        assert history(store, best).equals(s)
        with pytest.raises(SeriesMissingError, match="past retention"):
            store.series({**ref, "offsets": [positions[-1][1] + 10_000]}, "a/b c")
    finally:
        store.close()


def test_irregular_timestamps_travel_as_epoch_integers(kafka_bootstrap: str, producer_: Producer) -> None:
    rid = f"irregular-{uuid.uuid4().hex[:8]}"
    index = pd.DatetimeIndex(np.array(["1650-01-01", "1650-01-03", "1650-01-04", "1650-02-01"], dtype="datetime64[us]"))
    s = pd.Series([1.0, 2.5, -3.0, 4.0], index=index, name="old")
    stored = [config_part(rid, "{}"), *parts(rid, "old", 1, s)]
    assert stored[1][1]["timestamps_us"] is not None  # no frequency regenerates them
    positions = _publish(producer_, stored)
    store = SeriesStore(kafka_bootstrap)
    try:
        back = store.series(series_ref(positions[0][0], positions[0][1], [positions[1][1]], 4), "old")
    finally:
        store.close()
    assert back.index.equals(s.index) and back.tolist() == s.tolist()


def test_many_series_are_read_once_each_whatever_the_cache(kafka_bootstrap: str, producer_: Producer) -> None:
    """The validator's pattern: the request's config, then a series' first chunk, for each series in turn. A
    read-ahead larger than the cache evicted the config it was asked for next and read it again, with the
    whole read-ahead, every time."""
    rid = f"many-{uuid.uuid4().hex[:8]}"
    index = pd.date_range("2000-01-01", periods=24, freq="MS")
    stored = [config_part(rid, '{"x": 2}')]
    for i in range(300):
        stored += parts(rid, f"s{i}", 300, pd.Series(np.full(24, float(i)), index=index, name=f"s{i}"))
    positions = _publish(producer_, stored)
    refs = [series_ref(positions[0][0], positions[0][1], [o], 24) for _, o in positions[1:]]
    for cache in (16, 4096):
        store = SeriesStore(kafka_bootstrap, cache_records=cache)
        try:
            for i, ref in enumerate(refs):
                assert store.config_json(ref) == '{"x": 2}'
                assert store.series(ref, f"s{i}").iloc[0] == i
        finally:
            store.close()
        assert store.reads <= 2 * len(stored), (cache, store.reads)
