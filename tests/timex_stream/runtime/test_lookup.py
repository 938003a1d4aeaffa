"""Readers find a request where it began: a pile of other requests' records before it is not read."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Producer

from schemas.topics import BEST_MODELS, PROGRESS, REQUESTS
from tests.plugins.samples import SAMPLES
from timex_stream.runtime.intake import Position
from timex_stream.runtime.kafka import ensure_topics, send
from timex_stream.runtime.lookup import NOT_INDEXED_LOOKBACK_MS, ReadStats, read_views, start_times
from timex_stream.runtime.request_index import index_record, read_index
from timex_stream.tools.follow import follow, snapshot

PILE = 5_000


def _progress(rid: str, stage: str, **fields: object) -> dict:
    return {**SAMPLES["Progress"], "request_id": rid, "stage": stage, "at": int(time.time() * 1000), **fields}


def test_a_request_is_read_from_where_it_began_not_from_offset_0(kafka_bootstrap: str, producer_: Producer) -> None:
    ensure_topics(kafka_bootstrap)
    tag = uuid.uuid4().hex[:8]
    for i in range(PILE):  # other requests' records, all before ours
        send(producer_, PROGRESS, f"pile-{tag}-{i}", _progress(f"pile-{tag}-{i}", "accepted"))
    producer_.flush(30)
    # Time passing is the condition: the pile must be older than our request minus the look-back used below.
    time.sleep(1.5)

    rid = f"lookup-{tag}"
    began = int(time.time() * 1000)
    send(producer_, REQUESTS, rid, index_record(rid, Position(0, 0, began), {
        "submitted_at": began, "origin": "cli", "config_json": '{"activity_title": "lookup"}', "owner": None}))
    send(producer_, PROGRESS, rid, _progress(rid, "ingested", series_names=["x"], units_total=12))
    send(producer_, BEST_MODELS, rid, {**SAMPLES["BestModel"], "request_id": rid, "series": "x", "series_total": 1})
    producer_.flush(30)

    index = read_index(kafka_bootstrap, {rid})
    assert index[rid]["configs_at"] == began and index[rid]["title"] == "lookup"
    assert start_times(kafka_bootstrap, [rid]) == {rid: began}

    stats = ReadStats()
    view = read_views(kafka_bootstrap, {rid: began}, stats, lookback_ms=1000)[rid]
    assert view.done and view.status == "done" and set(view.results) == {"x"} and view.series_names == ["x"]
    assert stats.records < PILE / 10, stats  # the pile before it was not read

    everything = ReadStats()  # the same read from offset 0 does read the pile: it is there to be skipped
    assert read_views(kafka_bootstrap, {rid: 0}, everything, lookback_ms=0)[rid].done
    assert everything.records >= PILE

    # The CLI's readers find it the same way (from the index).
    assert snapshot(kafka_bootstrap, [rid])[rid].status == "done"
    assert follow(kafka_bootstrap, [rid], 30)[rid].results.keys() == {"x"}


def test_a_request_not_indexed_yet_is_looked_for_in_the_last_minutes(kafka_bootstrap: str) -> None:
    ensure_topics(kafka_bootstrap)
    before = int(time.time() * 1000)
    rid = f"unknown-{uuid.uuid4().hex[:8]}"
    assert before - NOT_INDEXED_LOOKBACK_MS <= start_times(kafka_bootstrap, [rid])[rid] <= before
    assert snapshot(kafka_bootstrap, [rid])[rid].status == "submitted"
