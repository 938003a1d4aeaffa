"""The live bounds on the real broker, with a stack of their own (small limits in its services' environment):
standing requests in all and per user, series per request, window_points at the ingestion, the record rate
taken per request (back-pressure: every point is folded in, later and in fewer revisions), a refit kind refitted
in the live service's unit pool, and a live fit over the pool's time limit (a `limits` failure for its series)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Producer

from forecasting.config import config_from_json
from forecasting.live.follow import Choice, LiveSeries, fit_live
from forecasting.live.models.refit import REFIT_EVERY
from forecasting.live.observations import Observation
from forecasting.live.params import live_request
from schemas.topics import BEST_MODELS, FAILURES
from tests.live.test_service import MIN_POINTS, START, Seen, _config, _produce, _record, _topic, _value
from tests.plugins.flows import TIMEOUT
from tests.plugins.live_source import own_live_stack
from tests.plugins.waiting import wait_until
from timex_stream.runtime.kafka import producer
from timex_stream.runtime.submit import stop_standing, submit
from timex_stream.tools.stack import Stack

LIMITS = {"TIMEX_LIVE_MAX_REQUESTS": "3", "TIMEX_LIVE_MAX_REQUESTS_PER_USER": "1", "TIMEX_LIVE_MAX_SERIES": "2",
          "TIMEX_LIVE_MAX_WINDOW_POINTS": "10000", "TIMEX_LIVE_MAX_RECORDS_PER_S": "40"}
RATE = 40


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with own_live_stack(tmp_path_factory.mktemp("live-limits"),
                        {**LIMITS, "TIMEX_PREDICTOR_CONCURRENCY": "1"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def producer_b(bounded: Stack) -> Producer:
    return producer(bounded.bootstrap)


def _history(prod: Producer, source: str, days: int = MIN_POINTS + 1) -> None:
    _produce(prod, source, [_record("long", d) for d in range(days)])


def _outcome(seen: Seen, series: str = "sales") -> str:
    """"followed" once a revision comes, else the `limits` failure's message."""
    def done() -> str | None:
        refused = [f for f in seen.poll().records[FAILURES.name] if f["stage"] == "limits" and f["fatal"]]
        if refused:
            return refused[0]["message"]
        return "followed" if seen.revisions(series) else None
    return wait_until(done, TIMEOUT, f"{seen.rid} followed or refused")


def test_over_the_record_rate_the_points_wait_on_the_topic_and_all_are_folded_in(
        bounded: Stack, producer_b: Producer) -> None:
    source = _topic(bounded.bootstrap)
    _history(producer_b, source)
    rid = submit(producer_b, _config(source))
    seen = Seen(bounded.bootstrap, rid, source)
    try:
        assert _outcome(seen) == "followed"
        more = 8 * RATE  # 8 s of the rate at once: one second's worth is taken, the rest at the rate
        t0 = time.monotonic()
        _produce(producer_b, source, [_record("long", d) for d in range(MIN_POINTS + 1, MIN_POINTS + 1 + more)])
        total = MIN_POINTS + 1 + more
        wait_until(lambda: [r for r in seen.revisions() if r["revision"] == total], TIMEOUT, "every point folded")
        took = time.monotonic() - t0
        revisions = seen.revisions()
        assert sum(r["points"] for r in revisions) == total  # nothing lost: every point is in one revision
        assert took >= (more - RATE) / RATE * 0.9, took  # not faster than the rate (load only slows it)
        later = [r["points"] for r in revisions[1:]]
        assert max(later) > 1 and len(later) < more  # folded: fewer revisions than points
        assert revisions[-1]["last_timestamp"] == (START + pd.Timedelta(days=total - 1)).isoformat()
        stop_standing(producer_b, rid)
        wait_until(lambda: [m for m in seen.progress() if "standing request stopped" in m], TIMEOUT, "stopped")
    finally:
        seen.close()


def test_a_refit_kind_is_refitted_in_the_pool_and_revised_as_a_fit_on_the_same_points(
        bounded: Stack, producer_b: Producer) -> None:
    """fbprophet cannot fold a point in: every REFIT_EVERY points the live service refits it in its unit pool
    (the state and the answer cross the process boundary); the revision after the refit forecasts what a fit on
    the same points does (forecasting.live.follow, here in place)."""
    source = _topic(bounded.bootstrap)
    _history(producer_b, source)
    config = _config(source, reselect_patience=0)  # no re-selection: the local replica below answers none
    config["model_parameters"]["models"] = "fbprophet"
    rid = submit(producer_b, config, owner="eve")
    seen = Seen(bounded.bootstrap, rid, source)
    try:
        assert _outcome(seen) == "followed"
        total = MIN_POINTS + 1 + REFIT_EVERY + 5
        _produce(producer_b, source, [_record("long", d) for d in range(MIN_POINTS + 1, total)])
        (last,) = wait_until(lambda: [r for r in seen.revisions() if r["revision"] == total], TIMEOUT,
                             "the revision after the refit")
        assert not [f for f in seen.poll().records[FAILURES.name] if f["series"] == "sales"]
        (best,) = seen.poll().records[BEST_MODELS.name]
        choice = Choice.of(best)
        assert choice is not None and choice.model == "fbprophet"
        parsed = config_from_json(json.dumps(config))
        params = live_request(parsed)
        assert params is not None
        local = LiveSeries("sales", parsed, params.live, "D")
        for d in range(total):
            local.add(Observation("sales", START + pd.Timedelta(days=d), _value(d)))
        assert local.snapshot is not None
        local.start(choice, fit_live(parsed.to_json(), local.snapshot, choice))
        expected = local.revise()  # fits the due point in place
        assert expected is not None and expected["revision"] == total
        assert last["forecast"]["timestamps"] == expected["forecast"]["timestamps"]
        np.testing.assert_allclose(last["forecast"]["yhat"], expected["forecast"]["yhat"], rtol=1e-6)
        stop_standing(producer_b, rid, owner="eve")
        wait_until(lambda: [m for m in seen.progress() if "standing request stopped" in m], TIMEOUT, "stopped")
    finally:
        seen.close()


def test_standing_requests_are_bounded_in_all_per_user_and_in_series(bounded: Stack, producer_b: Producer) -> None:
    source = _topic(bounded.bootstrap)
    _history(producer_b, source)
    wide = _topic(bounded.bootstrap)  # three series in each record; two are followed
    _produce(producer_b, wide, [(None, json.dumps({"date": (START + pd.Timedelta(days=d)).strftime("%Y-%m-%d"),
                                                     "a": 1.0 + d, "b": 2.0 * d, "c": 3.0}).encode())
                                for d in range(MIN_POINTS + 1)])
    seens: list[Seen] = []

    def request(src: str, owner: str | None, series: str = "sales", **live: Any) -> tuple[str, str]:
        rid = submit(producer_b, _config(src, **live), owner=owner)
        seens.append(Seen(bounded.bootstrap, rid, src))
        return rid, _outcome(seens[-1], series)

    try:
        ann, outcome = request(source, "ann")
        assert outcome == "followed"
        _, outcome = request(source, "ann")
        assert outcome == "ann has 1 active standing request(s); at most 1 per user " \
                          "(TIMEX_LIVE_MAX_REQUESTS_PER_USER): stop one first"
        _, outcome = request(source, None)  # straight to Kafka: the owner "kafka"
        assert outcome == "followed"
        _, outcome = request(wide, "bob", series="a")
        assert outcome == "followed"
        bob = seens[-1]
        wait_until(lambda: bob.revisions("b"), TIMEOUT, "the second series' revision")
        (refused,) = wait_until(lambda: [f for f in bob.poll().records[FAILURES.name] if f["stage"] == "limits"],
                                TIMEOUT, "the third series refused")
        assert refused["series"] == "c" and "TIMEX_LIVE_MAX_SERIES" in refused["message"] and not refused["fatal"]
        assert not bob.revisions("c")
        _, outcome = request(source, "cid")
        assert outcome == "3 standing requests are active; at most 3 (TIMEX_LIVE_MAX_REQUESTS): stop one first"
        _, outcome = request(source, "dan", window_points=20_000)  # refused at the ingestion, at once
        assert "window_points is 20,000" in outcome and "TIMEX_LIVE_MAX_WINDOW_POINTS" in outcome
        stop_standing(producer_b, ann, owner="ann")
        wait_until(lambda: [m for m in seens[0].progress() if "standing request stopped" in m], TIMEOUT, "stopped")
        _, outcome = request(source, "ann")  # room again for ann, and in all
        assert outcome == "followed"
    finally:
        for seen in seens:
            seen.close()


def test_a_live_fit_over_the_time_limit_is_a_limits_failure_for_its_series(bounded: Stack,
                                                                          producer_b: Producer) -> None:
    live = bounded.children["live"]
    live.terminate()
    live.wait(60)
    # The live service again, with a unit time limit no prophet fit meets (its selection, in the predictor,
    # keeps the default), and room for more requests.
    bounded.launch("live", TIMEX_UNIT_TIMEOUT_S="0.05", TIMEX_LIVE_MAX_REQUESTS="10",
                   TIMEX_LIVE_MAX_REQUESTS_PER_USER="10")
    source = _topic(bounded.bootstrap)
    _history(producer_b, source)
    config = _config(source)
    config["model_parameters"]["models"] = "fbprophet"
    rid = submit(producer_b, config)
    seen = Seen(bounded.bootstrap, rid, source)
    try:
        (stopped,) = wait_until(lambda: [f for f in seen.poll().records[FAILURES.name] if f["stage"] == "limits"],
                                TIMEOUT, "the fit's limits failure")
        assert stopped["series"] == "sales" and stopped["model"] == "fbprophet" and not stopped["fatal"]
        assert "time limit of 0.05 s (TIMEX_UNIT_TIMEOUT_S)" in stopped["message"]
        assert "revised no more" in stopped["message"]
        _produce(producer_b, source, [_record("long", MIN_POINTS + 1)])
        time.sleep(2)
        assert not seen.revisions()
    finally:
        seen.close()
