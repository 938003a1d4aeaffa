"""Users kept apart at the gateway, on the real broker and services: bearer tokens (401), another user's
request is as unknown as a made-up id everywhere (404), the owner travels on `configs`, per-user rate limits
(429 + Retry-After, then recovery), and no token or password in the gateway's log."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from schemas.topics import CONFIGS
from tests.plugins.gateways import Gateway, fast_config, sse, wait_for
from tests.plugins.waiting import wait_until
from timex_stream.runtime.history import read_range
from timex_stream.runtime.intake import position_of, read_request
from timex_stream.runtime.submit import submit
from timex_stream.tools.stack import Stack

ALICE = "alice-" + uuid.uuid4().hex
BOB = "bob-" + uuid.uuid4().hex
SASL_PASSWORD = "sasl-" + uuid.uuid4().hex
TOKENS = f"alice:{ALICE},bob:{BOB}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def gw(launch_gateway: Callable[..., Gateway]) -> Gateway:
    # The SASL password is unused on the PLAINTEXT test broker; it is set to prove it is never logged.
    # Bob also sees requests sent straight to Kafka (TIMEX_API_KAFKA_USERS); Alice does not.
    return launch_gateway("gateway-auth", TIMEX_API_TOKENS=TOKENS, KAFKA_SASL_PASSWORD=SASL_PASSWORD,
                          TIMEX_LOG_LEVEL="DEBUG", TIMEX_API_KAFKA_USERS="bob")


@pytest.fixture(scope="module")
def data_url(csv_server: tuple[str, Path]) -> str:
    from tests.plugins.frames import synthetic_frame

    base, root = csv_server
    synthetic_frame().to_csv(root / "auth.csv", index=False)
    return f"{base}/auth.csv"


@pytest.fixture(scope="module")
def alices_request(gw: Gateway, data_url: str) -> str:
    """A finished request of alice's."""
    resp = requests.post(f"{gw.url}/api/requests", json=fast_config(data_url, ["trend"]), headers=bearer(ALICE),
                         timeout=30)
    assert resp.status_code == 202, resp.text
    rid = resp.json()["request_id"]
    wait_for(f"{gw.url}/api/requests/{rid}", lambda r: r.status_code == 200 and r.json()["done"],
             headers=bearer(ALICE))
    return rid


def get(gw: Gateway, path: str, token: str | None, **kwargs: Any) -> requests.Response:
    headers = bearer(token) if token else {}
    return requests.get(f"{gw.url}{path}", headers=headers, timeout=30, **kwargs)


def test_no_token_or_a_wrong_one_gets_401(gw: Gateway) -> None:
    for headers in ({}, bearer(ALICE + "x"), {"Authorization": f"Basic {ALICE}"}, bearer("")):
        for method, path in [("GET", "/api/requests"), ("GET", "/api/requests/anything"),
                             ("GET", "/api/requests/anything/events"), ("POST", "/api/requests"),
                             ("POST", "/api/requests/anything/reforecast"), ("GET", "/api/no-such-route")]:
            resp = requests.request(method, f"{gw.url}{path}", headers=headers, json={}, timeout=10)
            assert resp.status_code == 401, (headers, path, resp.text)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            body = resp.json()
            assert body["field"] == "Authorization" and body["error"] and ALICE not in body["error"]
    for open_path in ("/health", "/metrics", "/openapi.json"):  # probes and docs need no token
        assert requests.get(f"{gw.url}{open_path}", timeout=10).status_code == 200
    doc = requests.get(f"{gw.url}/openapi.json", timeout=10).json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert {"401", "429"} <= set(doc["paths"]["/api/requests"]["post"]["responses"])


def test_a_user_sees_only_their_own_requests(gw: Gateway, alices_request: str) -> None:
    rid = alices_request
    mine = get(gw, f"/api/requests/{rid}", ALICE).json()
    assert mine["status"] == "done" and mine["owner"] == "alice"
    assert [r["request_id"] for r in get(gw, "/api/requests", ALICE, params={"limit": 1000}).json()["requests"]
            ] == [rid]
    assert get(gw, f"/api/requests/{rid}/results.csv", ALICE).status_code == 200
    assert [name for name, _ in sse(f"{gw.url}/api/requests/{rid}/events", headers=bearer(ALICE))][-1] == "done"

    for suffix in ("", "/events", "/results.json", "/results.csv"):  # as unknown as an id nobody ever used
        theirs, made_up = get(gw, f"/api/requests/{rid}{suffix}", BOB), get(gw, f"/api/requests/0{suffix}", BOB)
        assert theirs.status_code == made_up.status_code == 404, suffix
        assert theirs.json() == {"error": f"unknown request id '{rid}'", "field": "request_id"}
        assert made_up.json() == {"error": "unknown request id '0'", "field": "request_id"}
    again = requests.post(f"{gw.url}/api/requests/{rid}/reforecast", headers=bearer(BOB), timeout=30)
    assert again.status_code == 404 and again.json()["field"] == "request_id"
    # Bob sees owner-less (Kafka) requests of other tests, as a TIMEX_API_KAFKA_USERS user, but nobody's own.
    bobs = get(gw, "/api/requests", BOB, params={"limit": 1000}).json()["requests"]
    assert rid not in {r["request_id"] for r in bobs} and all(r["owner"] is None for r in bobs)

    # Alice may re-forecast her own: the new request is hers too.
    again = requests.post(f"{gw.url}/api/requests/{rid}/reforecast", headers=bearer(ALICE), timeout=30)
    assert again.status_code == 202, again.text
    new = again.json()["request_id"]
    assert get(gw, f"/api/requests/{new}", ALICE).json()["replay_of"] == rid
    assert get(gw, f"/api/requests/{new}", BOB).status_code == 404
    listed = [r["request_id"] for r in get(gw, "/api/requests", ALICE).json()["requests"]]
    assert set(listed) == {rid, new}


def _configs_record(bootstrap: str, rid: str) -> dict[str, Any]:
    """The ForecastRequest of `rid` as it is on `configs`."""
    return next(read_request(m.key(), m.value(), position_of(m)) for m in read_range(bootstrap, CONFIGS.name)
                if m.key() == rid.encode())


def test_the_owner_is_recorded_on_configs(gw: Gateway, alices_request: str, kafka_bootstrap: str) -> None:
    record = _configs_record(kafka_bootstrap, alices_request)
    assert record["owner"] == "alice" and record["origin"] == "gateway"


def test_requests_sent_straight_to_kafka_are_only_the_kafka_users(gw: Gateway, data_url: str, stack: Stack) -> None:
    """Kafka's own ACLs guard what the CLI submits; only the users named in TIMEX_API_KAFKA_USERS see it."""
    from timex_stream.runtime.kafka import producer

    rid = submit(producer(stack.bootstrap), fast_config(data_url, ["trend"]))
    assert _configs_record(stack.bootstrap, rid)["owner"] is None
    assert get(gw, f"/api/requests/{rid}", ALICE).status_code == 404
    assert rid not in {r["request_id"] for r in get(gw, "/api/requests", ALICE).json()["requests"]}
    # The gateway's consumer has to read the configs record first.
    wait_until(lambda: get(gw, f"/api/requests/{rid}", BOB).status_code == 200, 60,
               what="bob seeing the request sent straight to Kafka")
    assert rid in {r["request_id"] for r in get(gw, "/api/requests", BOB).json()["requests"]}


def test_over_the_rate_limit_429_with_retry_after_then_recovers(launch_gateway: Callable[..., Gateway]) -> None:
    slow = launch_gateway("gateway-auth-limited", TIMEX_API_TOKENS=TOKENS, TIMEX_RATE_LIMIT_PER_S="0.5",
                          TIMEX_RATE_LIMIT_BURST="2")

    def reforecast(token: str) -> requests.Response:  # a write that reaches no Kafka: 404 when allowed
        return requests.post(f"{slow.url}/api/requests/unknown/reforecast", headers=bearer(token), timeout=10)

    assert [reforecast(ALICE).status_code for _ in range(2)] == [404, 404]
    over = reforecast(ALICE)
    assert over.status_code == 429, over.text
    wait = int(over.headers["Retry-After"])
    assert 1 <= wait <= 2 and "too many submissions" in over.json()["error"]
    assert requests.post(f"{slow.url}/api/requests", headers=bearer(ALICE), json={}, timeout=10).status_code == 429
    assert reforecast(BOB).status_code == 404  # per user: bob still has his burst
    assert get(slow, "/api/requests", ALICE).status_code == 200  # reads have their own, looser budget
    dry = requests.post(f"{slow.url}/api/requests", params={"dry_run": "1"}, headers=bearer(ALICE), json={},
                        timeout=10)
    assert dry.status_code == 400  # a dry run is a read: validated (and refused for the empty config)
    time.sleep(wait)  # the thing under test: the budget is back once Retry-After has passed, not before
    assert reforecast(ALICE).status_code == 404  # one token back after Retry-After


def test_no_token_or_password_in_the_gateway_log(gw: Gateway, alices_request: str, stack: Stack) -> None:
    # A few more calls that put the tokens where a careless log line would catch them.
    get(gw, f"/api/requests/{ALICE}", BOB)
    get(gw, f"/api/requests/{alices_request}", BOB)
    get(gw, "/api/requests", None, params={"token": ALICE})
    requests.post(f"{gw.url}/api/requests", headers=bearer(BOB), data=f"{{{BOB}".encode(),
                  params={"origin": SASL_PASSWORD}, timeout=10)
    log = (stack.log_dir / "gateway-auth.log").read_text()
    assert "API tokens on: 2 users" in log  # the log is there and this is the gateway with tokens
    for secret in (ALICE, BOB, SASL_PASSWORD):
        assert secret not in log


def test_only_the_owner_stops_a_request(gw: Gateway, alices_request: str, kafka_bootstrap: str) -> None:
    from schemas import decode_as
    from schemas.topics import STANDING

    rid = alices_request
    theirs = requests.delete(f"{gw.url}/api/requests/{rid}", headers=bearer(BOB), timeout=30)
    assert theirs.status_code == 404 and theirs.json()["field"] == "request_id"
    mine = requests.delete(f"{gw.url}/api/requests/{rid}", headers=bearer(ALICE), timeout=30)
    assert mine.status_code == 202 and mine.json() == {"request_id": rid, "status": "stopped"}
    stops = [decode_as("StandingRequest", m.value()) for m in read_range(kafka_bootstrap, STANDING.name)
             if m.key() == rid.encode()]
    assert [(s["status"], s["owner"]) for s in stops] == [("stopped", "alice")]  # bob's refusal wrote nothing
    doc = requests.get(f"{gw.url}/openapi.json", timeout=10).json()
    assert "404" in doc["paths"]["/api/requests/{request_id}"]["delete"]["responses"]
