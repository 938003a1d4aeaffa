"""The fast lane on the real stack (the shared stack runs without it: its other tests are about the predictors'
path): the ingestion is started again with TIMEX_FAST_LANE_MAX_WORK set for this module. A small request is
answered without a predictor (closed-form models' units on the ingestion's thread, others in its pool) and with
the answer, progress and failures of the predictors' path (the same configs again with the lane off); a request
above the bound goes to the predictors; a kill -9 of the ingestion with fast-lane requests in flight still
answers each once."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Producer

from schemas.topics import BEST_MODELS, CONFIGS, FAILURES, PROGRESS
from tests.plugins.flows import TIMEOUT, records_of, stall_repairs
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack, wait_for_members

# 72 points × 8 units (2 models × 4 windows) a series: a request of one series fits under it, of three does not.
BOUND = 1000
ON = {"TIMEX_FAST_LANE_MAX_WORK": str(BOUND)}
OFF = {"TIMEX_FAST_LANE_MAX_WORK": "0"}


def _ingestion_with(stack: Stack, env: dict[str, str], stop: signal.Signals = signal.SIGTERM) -> None:
    name, before = stack.launched["ingestion"]
    stack.launched["ingestion"] = (name, {**before, **env})
    stack.restart("ingestion", stop)
    wait_for_members(stack.bootstrap, "timex-ingestion", CONFIGS.name, 1)


@pytest.fixture(scope="module")
def fast_lane(stack: Stack) -> Iterator[Stack]:
    _ingestion_with(stack, ON)
    yield stack
    _ingestion_with(stack, OFF)


def _metric(stack: Stack, service: str, sample: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{stack.web_ports[service]}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(sample + " "))


def _datasets_consumed(stack: Stack) -> float:
    return _metric(stack, "predictor", 'timex_records_consumed_total{topic="datasets"}')


def _on_loop(stack: Stack) -> float:
    """Fast-lane requests whose units ran on the ingestion's thread (closed-form models only)."""
    return _metric(stack, "ingestion", "timex_requests_in_place_on_loop_total")


def _in_place(stack: Stack, rid: str) -> bool:
    """Whether the ingestion says it answered `rid` in place."""
    lines = (stack.log_dir / "ingestion.log").read_text(errors="replace").splitlines()
    # A line may follow a terminal's escape sequence.
    return any(json.loads(line[line.index("{"):]).get("request_id") == rid
               for line in lines if "answered in place" in line and "{" in line)


def _answer(best: dict[str, Any]) -> dict[str, Any]:
    """A BestModel without what differs between two requests by nature: ids, where the series landed, times."""
    gone = ("request_id", "series_ref", "decided_at")
    return {**{k: v for k, v in best.items() if k not in gone},
            "comparison": [{**row, "fit_seconds": 0.0} for row in best["comparison"]]}


def _stages(progress: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return sorted((p["stage"], p["series"]) for p in progress)


def _failures(failures: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((f["stage"], f["series"], f["model"], f["message"], f["fatal"]) for f in failures)


def test_a_small_request_skips_the_predictors_with_the_same_answer_progress_and_failures(
        fast_lane: Stack, producer_: Producer, serve_csv: Callable, config_for: Callable,
        frame_: pd.DataFrame) -> None:
    stack = fast_lane
    url = serve_csv("fast-lane.csv", frame_)
    small = config_for(url, ["walk"], models="naive,theta")  # theta: its units run in the ingestion's pool
    closed = config_for(url, ["seasonal"], models="naive,seasonal_naive")  # closed-form: on the ingestion's thread
    large = config_for(url, ["walk", "trend", "seasonal"], models="naive,theta")  # 1,728 points × units
    bad = config_for(url, ["label"], models="naive,theta")  # a text column: no series can be forecast

    def answer_all() -> tuple[list[str], float, float]:
        before, on_loop = _datasets_consumed(stack), _on_loop(stack)
        rids = [submit(producer_, c) for c in (small, closed, large, bad)]
        views = follow(stack.bootstrap, rids, TIMEOUT)
        assert [views[r].status for r in rids] == ["done", "done", "done", "failed"], [views[r].to_dict()
                                                                                       for r in rids]
        return rids, _datasets_consumed(stack) - before, _on_loop(stack) - on_loop

    (fast, fast_closed, fast_large, fast_bad), fast_consumed, fast_on_loop = answer_all()
    assert _in_place(stack, fast) and _in_place(stack, fast_closed) and not _in_place(stack, fast_large)
    assert fast_on_loop == 1  # the closed-form request's; the small one's theta units ran in the pool
    try:
        _ingestion_with(stack, OFF)
        (slow, slow_closed, _, slow_bad), slow_consumed, slow_on_loop = answer_all()
    finally:
        _ingestion_with(stack, ON)
    assert not _in_place(stack, slow) and not _in_place(stack, slow_closed) and slow_on_loop == 0
    # The predictors ran the same records but the two small requests' (each one record: its units and final
    # refits together).
    assert slow_consumed - fast_consumed == 2 and fast_consumed >= 3, (fast_consumed, slow_consumed)
    rids = [fast, slow, fast_closed, slow_closed, fast_bad, slow_bad]
    found = records_of(stack.bootstrap, (BEST_MODELS, PROGRESS, FAILURES), rids)
    best, progress, failures = (found[t.name] for t in (BEST_MODELS, PROGRESS, FAILURES))
    assert len(best[fast]) == len(best[slow]) == 1 and best[fast_bad] == best[slow_bad] == []
    assert len(best[fast_closed]) == len(best[slow_closed]) == 1
    assert _answer(best[fast][0]) == _answer(best[slow][0])
    assert _answer(best[fast_closed][0]) == _answer(best[slow_closed][0])
    assert best[fast][0]["model"] and best[fast][0]["complete"]
    assert {row["model"] for row in best[fast_closed][0]["comparison"]} == {"naive", "seasonal_naive"}
    assert _stages(progress[fast]) == _stages(progress[slow]) == [("accepted", None), ("ingested", None),
                                                                  ("series_done", "walk")]
    assert _stages(progress[fast_closed]) == _stages(progress[slow_closed])
    assert _stages(progress[fast_bad]) == _stages(progress[slow_bad])
    assert _failures(failures[fast]) == _failures(failures[slow])
    assert _failures(failures[fast_bad]) == _failures(failures[slow_bad]) != []


def test_kill_9_of_the_ingestion_with_fast_lane_requests_in_flight_answers_each_once(
        fast_lane: Stack, producer_: Producer, serve_csv: Callable, config_for: Callable,
        frame_: pd.DataFrame) -> None:
    stack = fast_lane
    url = serve_csv("fast-lane-kill.csv", frame_)
    # Units in the ingestion's pool (theta) and on its thread (closed-form only), mixed.
    rids = [submit(producer_, config_for(url, [name], models=models)) for name in ("walk", "trend") * 2
            for models in ("naive,theta", "naive,seasonal_naive")]
    follow(stack.bootstrap, rids, TIMEOUT, until=lambda v: v[rids[0]].accepted)
    _ingestion_with(stack, ON, signal.SIGKILL)
    views = follow(stack.bootstrap, rids, TIMEOUT)
    best = records_of(stack.bootstrap, (BEST_MODELS, PROGRESS, FAILURES), rids)[BEST_MODELS.name]
    for rid in rids:
        assert views[rid].status == "done" and len(views[rid].results) == 1, views[rid].to_dict()
        assert len(best[rid]) == 1, best[rid]  # a config delivered again is not answered again
        assert stall_repairs(stack, rid) == [] and _in_place(stack, rid)


def _ends(stack: Stack) -> dict[int, int]:
    """The end offset of each partition of `configs`."""
    from confluent_kafka import TopicPartition

    from timex_stream.runtime.kafka import consumer

    cons = consumer(stack.bootstrap, "timex-test-ends")
    try:
        return {p: cons.get_watermark_offsets(TopicPartition(CONFIGS.name, p), timeout=10)[1]
                for p in range(CONFIGS.partitions)}
    finally:
        cons.close()


def _rewind(stack: Stack, to: dict[int, int]) -> None:
    """Set the ingestion's committed offsets on `configs` back to `to` (partition → offset), while it is stopped:
    what a crash after answering and before committing leaves."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    from timex_stream.runtime.kafka import admin

    partitions = [TopicPartition(CONFIGS.name, p, o) for p, o in to.items()]
    client, deadline = admin(stack.bootstrap), time.monotonic() + TIMEOUT  # kept: its futures die with it
    while True:  # the group must be empty: its member's leave may take a moment
        future = client.alter_consumer_group_offsets([ConsumerGroupTopicPartitions("timex-ingestion", partitions)],
                                                     request_timeout=10)["timex-ingestion"]
        try:
            future.result(timeout=15)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_configs_delivered_again_are_not_answered_again(
        fast_lane: Stack, producer_: Producer, serve_csv: Callable, config_for: Callable,
        frame_: pd.DataFrame) -> None:
    """The ingestion stopped after answering small requests and before committing their offsets: started again,
    it reads those configs again and skips each (its table's markers: ingestion.answered)."""
    stack = fast_lane
    url = serve_csv("fast-lane-again.csv", frame_)
    before = _ends(stack)
    rids = [submit(producer_, config_for(url, [name], models="naive,theta")) for name in ("walk", "trend") * 2]
    views = follow(stack.bootstrap, rids, TIMEOUT)
    assert all(views[r].status == "done" and _in_place(stack, r) for r in rids)
    after = _ends(stack)
    process = stack.children["ingestion"]
    process.send_signal(signal.SIGTERM)
    process.wait(TIMEOUT)
    _rewind(stack, before)
    name, env = stack.launched["ingestion"]
    stack.launch(name, "ingestion", **env)
    wait_for_members(stack.bootstrap, "timex-ingestion", CONFIGS.name, 1)
    _wait_committed(stack, after)  # every config read again
    best = records_of(stack.bootstrap, (BEST_MODELS,), rids)[BEST_MODELS.name]
    assert all(len(best[rid]) == 1 for rid in rids), best
    assert set(_delivered_again(stack, rids)) == set(rids)  # each skipped (a rebalance may read it once more)


def _wait_committed(stack: Stack, ends: dict[int, int]) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    from timex_stream.runtime.kafka import admin

    client, deadline = admin(stack.bootstrap), time.monotonic() + TIMEOUT
    wanted = [TopicPartition(CONFIGS.name, p) for p in ends]
    while time.monotonic() < deadline:
        found = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions("timex-ingestion", wanted)],
                                                   request_timeout=10)["timex-ingestion"].result(timeout=15)
        if {tp.partition: tp.offset for tp in found.topic_partitions} == ends:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the ingestion did not commit {ends} within {TIMEOUT} s")


def _delivered_again(stack: Stack, rids: list[str]) -> list[str]:
    """The requests among `rids` the ingestion says it skipped as delivered again."""
    lines = (stack.log_dir / "ingestion.log").read_text(errors="replace").splitlines()
    found = [json.loads(line[line.index("{"):]).get("request_id") for line in lines
             if "delivered again" in line and "{" in line]
    return [rid for rid in found if rid in rids]
