"""The end-to-end bad-input corpus (issue 13): every case of `cases.py` is one test. Each ends in a clear 4xx, a
Failure in plain words, a correct answer for every series (odd but valid input), a dead letter with its reason,
or a record the readers skip and count; afterwards every service is still up and a good request is answered.

Run with `-s` to see the peak memory (VmHWM) of each service process during the corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from confluent_kafka import Producer

from schemas.keys import InvalidRequestIdError
from schemas.topics import CONFIGS
from tests.corpus.cases import (
    HTTP_CASES,
    KAFKA_CASES,
    POISON_CASES,
    Answers,
    Case,
    DeadLetter,
    Fails,
    Http,
    Rejected,
    Skipped,
    Urls,
    config,
)
from tests.plugins.corpus_checks import Sent, gateway_skipped, matching_failures, satisfied
from tests.plugins.gateways import Gateway
from tests.plugins.waiting import wait_until
from timex_stream.runtime.kafka import consumer
from timex_stream.runtime.records import history_of
from timex_stream.runtime.request_view import RequestView
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack

TIMEOUT = 180.0


def ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def check(expect: Fails | Answers, view: RequestView) -> None:
    doc = json.dumps(view.to_dict(), default=str)[:3000]
    if isinstance(expect, Fails):
        found = matching_failures(view, expect)
        assert found, f"no {expect.stage} failure saying {expect.words}: {doc}"
        if expect.within_s is not None:  # accepted (before the download) → the failure
            took = (_ms(found[0]["occurred_at"]) - (view.first_at or 0)) / 1000
            assert took <= expect.within_s, f"the failure came {took:.0f} s after the request was accepted"
        if expect.series is None:
            assert view.status == "failed" and not view.results, doc
        return
    assert view.status == "done", doc
    assert set(view.results) == set(expect.series), (sorted(view.results), doc)
    for name in expect.series:
        best = view.results[name]
        assert best["series"] == name and best["model"] and best["complete"], doc
        assert len(best["forecast"]["yhat"]) == 3 and len(history_of(best)), doc
    for name, words in expect.failed.items():
        assert any(f["series"] == name and all(w.lower() in f["message"].lower() for w in words)
                   for f in view.failures), doc
    unexpected = [f for f in view.failures if f["series"] not in expect.failed]
    assert not unexpected, unexpected


@pytest.mark.parametrize("case", HTTP_CASES, ids=ids(HTTP_CASES))
def test_http(case: Case, gateway: Gateway, urls: Urls, stack: Stack) -> None:
    via = case.via
    assert isinstance(via, Http)
    resp = requests.request(via.method, f"{gateway.url}{via.path}", timeout=60, **via.request(urls))
    expect = via.expect
    if isinstance(expect, Rejected):
        assert resp.status_code == expect.status, resp.text[:500]
        body = resp.json()
        assert body["field"] == expect.field, body
        assert all(w.lower() in body["error"].lower() for w in expect.words), body
        return
    assert resp.status_code == 202, resp.text[:500]
    rid = resp.json()["request_id"]
    view = follow(stack.bootstrap, [rid], TIMEOUT, until=lambda v: satisfied(expect, v[rid]))[rid]
    check(expect, view)
    # The gateway tells the same story, once its own consumer has read as far (a reader of its own: it may be a
    # poll behind the follower that just saw the end; CI caught it at "running" once).
    def gateway_says() -> dict | None:
        snap = requests.get(f"{gateway.url}/api/requests/{rid}", timeout=10).json()
        return snap if snap["status"] == view.status else None

    snap = wait_until(gateway_says, 10, what=f"the gateway's status {view.status!r}")
    assert set(snap["results"]) == set(view.results), snap


@pytest.mark.parametrize("case", KAFKA_CASES, ids=ids(KAFKA_CASES))
def test_kafka(case: Case, sent: Sent) -> None:
    rid = sent.rids[case.id]
    check(case.via.expect, sent.views[rid])  # type: ignore[union-attr]


@pytest.mark.parametrize("case", POISON_CASES, ids=ids(POISON_CASES))
def test_poison(case: Case, sent: Sent, gateway: Gateway) -> None:
    via = case.via
    expect = via.expect  # type: ignore[union-attr]
    view = sent.views[sent.rids[case.id]]
    if isinstance(expect, DeadLetter):
        letter = sent.dead_letters.get(sent.placed[case.id])
        assert letter, f"no dead letter for {sent.placed[case.id]}"
        assert all(w.lower() in letter["error"].lower() for w in expect.words), letter
        if expect.sender_told:  # a keyed config: its sender is answered under the key
            told = [f for f in view.failures if f["stage"] == "decode"]
            assert told and told[0]["fatal"] and "not a TIMEX config" in told[0]["message"], view.failures
        return
    assert isinstance(expect, Skipped)
    assert view.skipped >= 1 and view.failures == [] and view.results == {}, view.to_dict()
    # The gateway skipped it too (three poison records per reader topic) and counts them.
    topic = via.topic  # type: ignore[union-attr]
    wait_until(lambda: gateway_skipped(gateway).get(topic, 0) - sent.skipped_before.get(topic, 0) >= 3, 30,
               what=f"the gateway counting 3 skipped records on {topic} (before: {sent.skipped_before})")


def test_submit_refuses_a_bad_request_id_before_producing(stack: Stack, producer_: Producer, urls: Urls) -> None:
    ends = _configs_end(stack.bootstrap)
    for rid in ("a/b", "a b", "x" * 1000, ""):
        with pytest.raises(InvalidRequestIdError, match="not valid"):
            submit(producer_, config(urls), request_id=rid)
    assert _configs_end(stack.bootstrap) == ends


def _configs_end(bootstrap: str) -> int:
    from confluent_kafka import TopicPartition

    cons = consumer(bootstrap, "t-ends")
    try:
        return sum(cons.get_watermark_offsets(TopicPartition(CONFIGS.name, p), timeout=10)[1]
                   for p in range(CONFIGS.partitions))
    finally:
        cons.close()


def test_after_the_corpus_every_service_is_up_and_a_good_request_is_answered(
        stack: Stack, gateway: Gateway, sent: Sent, urls: Urls) -> None:
    """Last in this module: all of the above went through these processes."""
    processes = sent.processes  # every service process that was up when the corpus began (its gateway too)
    assert {"ingestion", "predictor", "validator", "gateway-corpus"} <= set(processes)
    dead = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
    assert not dead, f"exited during the corpus: {dead}"
    resp = requests.post(f"{gateway.url}/api/requests", json=config(urls, "good.csv", ["walk", "trend"]), timeout=30)
    assert resp.status_code == 202, resp.text
    rid = resp.json()["request_id"]
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    check(Answers(("walk", "trend")), view)
    print(f"\npeak memory (VmHWM) of each service process after the corpus ({sent.seconds:.0f} s of Kafka cases):")
    for name, proc in processes.items():
        print(f"  {name:16} pid {proc.pid:7}  {_peak_kib(proc.pid) / 1024:8.1f} MiB")
        workers = _descendants(proc.pid)
        if workers:
            peaks = [_peak_kib(p) for p in workers]
            print(f"  {'':16} {len(workers)} child processes: max {max(peaks) / 1024:.1f} MiB, "
                  f"sum {sum(peaks) / 1024:.1f} MiB")


def _ms(value: object) -> int:
    return value if isinstance(value, int) else int(value.timestamp() * 1000)  # type: ignore[attr-defined]


def _peak_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found
