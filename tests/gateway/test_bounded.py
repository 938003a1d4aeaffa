"""A gateway keeps at most TIMEX_GATEWAY_MAX_REQUESTS requests' answers in memory: older ones are evicted
and read back from the topics on demand, in full; a newly started gateway answers an old request id."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.plugins.gateways import Gateway, fast_config, sse, wait_for


def metric(gw: Gateway, name: str) -> float:
    text = requests.get(f"{gw.url}/metrics", timeout=10).text
    return float(re.search(rf"^{name} (\S+)$", text, re.MULTILINE)[1])  # type: ignore[index]


@pytest.fixture(scope="module")
def data_url(csv_server: tuple[str, Path]) -> str:
    from tests.plugins.frames import synthetic_frame

    base, root = csv_server
    synthetic_frame().to_csv(root / "bounded.csv", index=False)
    return f"{base}/bounded.csv"


def test_a_capped_gateway_evicts_and_reloads_in_full(launch_gateway: Callable[..., Gateway], data_url: str) -> None:
    capped = launch_gateway("gateway-capped", TIMEX_GATEWAY_MAX_REQUESTS="2")
    rids = [requests.post(f"{capped.url}/api/requests", json=fast_config(data_url, [column]),
                          timeout=30).json()["request_id"] for column in ("trend", "walk", "seasonal", "bumpy")]
    answers = {rid: wait_for(f"{capped.url}/api/requests/{rid}", lambda r: r.json()["done"]).json() for rid in rids}
    assert metric(capped, "timex_gateway_requests_cached") <= 2
    assert metric(capped, "timex_gateway_request_evictions") >= 2

    # A gateway with room for all of them (and its own, independent reads) agrees on every answer.
    roomy = launch_gateway("gateway-roomy")
    for rid in rids:
        doc = wait_for(f"{roomy.url}/api/requests/{rid}", lambda r: r.status_code == 200 and r.json()["done"]).json()
        assert doc["status"] == "done" and doc["results"] and doc["results"] == answers[rid]["results"]

    loads = metric(capped, "timex_gateway_request_loads")
    first = requests.get(f"{capped.url}/api/requests/{rids[0]}", timeout=30).json()  # evicted: read back
    assert metric(capped, "timex_gateway_request_loads") > loads
    assert first == answers[rids[0]]
    assert metric(capped, "timex_gateway_requests_cached") <= 2
    listed = requests.get(f"{capped.url}/api/requests?limit=4", timeout=30).json()["requests"]
    assert [r["request_id"] for r in listed] == rids[::-1]  # newest first, beyond the cap
    assert all(r["status"] == "done" for r in listed)
    events = [name for name, _ in sse(f"{capped.url}/api/requests/{rids[1]}/events")]
    assert events[-1] == "done" and "result" in events


def test_a_new_gateway_answers_an_old_request(launch_gateway: Callable[..., Gateway], data_url: str) -> None:
    first = launch_gateway("gateway-old")
    rid = requests.post(f"{first.url}/api/requests", json=fast_config(data_url, ["trend"]),
                        timeout=30).json()["request_id"]
    before = wait_for(f"{first.url}/api/requests/{rid}", lambda r: r.json()["done"]).json()
    assert first.stop() == 0
    later = launch_gateway("gateway-later", TIMEX_GATEWAY_MAX_REQUESTS="1")
    assert metric(later, "timex_gateway_requests_cached") == 0  # nothing read but the index at start
    after = requests.get(f"{later.url}/api/requests/{rid}", timeout=30)
    assert after.status_code == 200 and after.json() == before
