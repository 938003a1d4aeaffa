"""A live (standing) request at the gateway, on the real broker with the stack's live service: its revisions
on the server-sent events as points arrive, `/forecasts` (latest, `?at=` the one current then, `?since=`),
owner-only (404 for another user), the listing's live state, read back by a gateway started later, and the
events' end once it is stopped."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
import requests
from confluent_kafka import Producer

from tests.plugins.gateways import Gateway, sse, wait_for
from tests.plugins.live_source import LIVE_MIN_POINTS, day_stamp, day_value, live_config, produce_days
from timex_stream.runtime.records import now_ms

ALICE = "alice-" + uuid.uuid4().hex
BOB = "bob-" + uuid.uuid4().hex
TIMEOUT = 120
FIRST = LIVE_MIN_POINTS + 1  # with no lateness a day is final once the next one is seen: one more point


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def gw(launch_gateway: Callable[..., Gateway]) -> Gateway:
    # Users of their own: user names are shared by every gateway on the session broker (test_auth counts alice's).
    return launch_gateway("gateway-live", TIMEX_API_TOKENS=f"lena:{ALICE},milo:{BOB}")


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}+00:00"


def test_revisions_by_events_and_forecasts_then_stop(gw: Gateway, producer_: Producer, live_source: str,
                                                     launch_gateway: Callable[..., Gateway]) -> None:
    produce_days(producer_, live_source, range(FIRST))
    before = now_ms()
    resp = requests.post(f"{gw.url}/api/requests", json=live_config(live_source), headers=bearer(ALICE), timeout=30)
    assert resp.status_code == 202, resp.text
    rid = resp.json()["request_id"]
    url = f"{gw.url}/api/requests/{rid}"
    first = wait_for(f"{url}/forecasts", lambda r: r.status_code == 200 and "sales" in r.json()["series"],
                     TIMEOUT, headers=bearer(ALICE)).json()
    assert first["live"] == "live" and first["series"]["sales"]["revision"] == FIRST
    assert first["series"]["sales"]["actual_timestamps"] == [day_stamp(FIRST - 1)]  # the provisional last day
    between = now_ms()

    # The events: first the latest revision, then each new one as points arrive.
    seen: list[int] = []
    scored: list[dict] = []
    for name, data in sse(f"{url}/events", TIMEOUT, headers=bearer(ALICE)):
        if name == "accuracy":  # after each revision: its realised accuracy (the accuracy topic's record)
            assert data["revision"] == seen[-1] and data["accuracy"]["estimator"] == "mae"
            scored.append(data)
        if name == "revision":
            assert data["request_id"] == rid and data["series"] == "sales" and data["published_at"] > 0
            seen.append(data["revision"])
            if len(seen) == 1:
                produce_days(producer_, live_source, range(FIRST, FIRST + 3))
            if data["revision"] == FIRST + 3:
                break
        assert name != "done", "a live request's events go on until it is stopped"
    assert seen[0] == FIRST and seen == sorted(set(seen)), seen
    assert len(scored) == len(seen) - 1  # the last revision's accuracy comes after it: not read here
    assert scored[-1]["accuracy"]["validation_error"] is not None

    latest = requests.get(f"{url}/forecasts", headers=bearer(ALICE), timeout=10).json()["series"]["sales"]
    assert latest["revision"] == FIRST + 3 and len(latest["forecast"]["yhat"]) == 4
    assert latest["last_timestamp"] == day_stamp(FIRST + 2)
    then = requests.get(f"{url}/forecasts", params={"at": _iso(between)}, headers=bearer(ALICE), timeout=10).json()
    assert then["series"]["sales"]["revision"] == FIRST and then["at"] == between
    early = requests.get(f"{url}/forecasts", params={"at": _iso(before - 60_000)}, headers=bearer(ALICE), timeout=10)
    assert early.json()["series"] == {}  # nothing was current before the request
    since = requests.get(f"{url}/forecasts", params={"since": FIRST}, headers=bearer(ALICE), timeout=10).json()
    revisions = since["revisions"]["sales"]
    assert [r["revision"] for r in revisions][-1] == FIRST + 3 and all(r["revision"] > FIRST for r in revisions)
    actuals = {t: v for r in [first["series"]["sales"], *revisions]
               for t, v in zip(r["actual_timestamps"], r["actual_values"], strict=True)}
    assert actuals == {day_stamp(d): day_value(d) for d in range(FIRST - 1, FIRST + 3)}

    # Owner-only; bad input names its field.
    for path in ("/forecasts", "/events"):
        stranger = requests.get(f"{url}{path}", headers=bearer(BOB), timeout=10)
        assert stranger.status_code == 404 and stranger.json()["field"] == "request_id"
    bad = requests.get(f"{url}/forecasts", params={"at": "yesterday-ish"}, headers=bearer(ALICE), timeout=10)
    assert bad.status_code == 400 and bad.json()["field"] == "at"
    bad = requests.get(f"{url}/forecasts", params={"since": "x"}, headers=bearer(ALICE), timeout=10)
    assert bad.status_code == 400 and bad.json()["field"] == "since"
    listed = requests.get(f"{gw.url}/api/requests", headers=bearer(ALICE), timeout=10).json()["requests"]
    row = next(r for r in listed if r["request_id"] == rid)
    assert row["live"]["state"] == "live" and row["live"]["revised_at"] >= between

    # A gateway started now reads the revisions back from where the request began.
    later = launch_gateway("gateway-live-later")
    back = wait_for(f"{later.url}/api/requests/{rid}/forecasts", lambda r: r.status_code == 200, TIMEOUT).json()
    assert back["series"]["sales"]["revision"] == FIRST + 3 and back["live"] == "live"

    # Stopped: the events end with done, live stopped; the last revision stays.
    assert requests.delete(url, headers=bearer(ALICE), timeout=10).status_code == 202
    events = list(sse(f"{url}/events", TIMEOUT, headers=bearer(ALICE)))
    assert events[-1] == ("done", {"request_id": rid, "status": "done", "live": "stopped"}), events[-3:]
    assert [d["revision"] for n, d in events if n == "revision"] == [FIRST + 3]
    stopped = requests.get(f"{url}/forecasts", headers=bearer(ALICE), timeout=10).json()
    assert stopped["live"] == "stopped" and stopped["series"]["sales"]["revision"] == FIRST + 3
