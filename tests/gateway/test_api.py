"""The gateway against the real broker and running services: submit → server-sent events → results; two
gateways answer the same ids; a restarted gateway still answers; bad input → 4xx JSON naming the field."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.plugins.frames import make_config, synthetic_frame
from tests.plugins.gateways import Gateway, fast_config, sse, wait_for

TIMEOUT = 120


@pytest.fixture(scope="module")
def gateways(launch_gateway: Callable[..., Gateway]) -> tuple[Gateway, Gateway]:
    return launch_gateway("gateway-a"), launch_gateway("gateway-b")


@pytest.fixture(scope="module")
def data_url(csv_server: tuple[str, Path]) -> str:
    base, root = csv_server
    synthetic_frame().to_csv(root / "gateway.csv", index=False)
    return f"{base}/gateway.csv"


def test_submit_events_results(gateways: tuple[Gateway, Gateway], data_url: str) -> None:
    gw = gateways[0]
    resp = requests.post(f"{gw.url}/api/requests", json=fast_config(data_url, ["seasonal", "trend"]), timeout=30)
    assert resp.status_code == 202, resp.text
    rid = resp.json()["request_id"]
    assert resp.json()["events_url"] == f"/api/requests/{rid}/events"

    events = list(sse(f"{gw.url}/api/requests/{rid}/events"))
    names = [name for name, _ in events]
    assert names[0] == "progress" and names[-1] == "done", names
    assert events[-1][1] == {"request_id": rid, "status": "done"}
    assert sorted(data["series"] for name, data in events if name == "result") == ["seasonal", "trend"]
    assert "failure" not in names
    last_progress = [data for name, data in events if name == "progress"][-1]
    assert last_progress["units_done"] == last_progress["units_total"] > 0

    view = requests.get(f"{gw.url}/api/requests/{rid}", timeout=10).json()
    assert view["status"] == "done" and view["origin"] == "gateway" and view["title"] == "e2e"
    for series in ("seasonal", "trend"):
        best = view["results"][series]
        assert best["model"] in {"naive", "seasonal_naive"}
        assert len(best["forecast"]["yhat"]) == 6
        assert {row["model"] for row in best["comparison"]} == {"naive", "seasonal_naive"}

    rows = list(csv.DictReader(io.StringIO(requests.get(f"{gw.url}/api/requests/{rid}/results.csv", timeout=10).text)))
    assert {(r["series"], r["kind"]) for r in rows} == {(s, k) for s in ("seasonal", "trend")
                                                       for k in ("history", "forecast")}
    assert sum(r["kind"] == "forecast" for r in rows) == 12
    doc = requests.get(f"{gw.url}/api/requests/{rid}/results.json", timeout=10).json()
    assert set(doc["results"]) == {"seasonal", "trend"} and doc["status"] == "done"

    listed = requests.get(f"{gw.url}/api/requests", params={"limit": 100}, timeout=10).json()["requests"]
    mine = [r for r in listed if r["request_id"] == rid]
    assert mine and mine[0]["status"] == "done" and mine[0]["submitted_at"] > 0


def test_upload_csv_then_reforecast(gateways: tuple[Gateway, Gateway]) -> None:
    gw = gateways[0]
    config = fast_config("", ["walk"])
    del config["input_parameters"]["source_data_url"]  # the upload is the data
    upload = synthetic_frame().to_csv(index=False).encode()
    resp = requests.post(f"{gw.url}/api/requests", params={"origin": "webapp"}, timeout=30,
                         files={"config": ("c.json", json.dumps(config)), "csv": ("walk.csv", upload)})
    assert resp.status_code == 202, resp.text
    rid = resp.json()["request_id"]
    first = wait_for(f"{gw.url}/api/requests/{rid}", lambda r: r.json()["done"]).json()
    assert first["status"] == "done" and first["has_csv"] and first["origin"] == "webapp"

    again = requests.get(f"{gw.url}/api/requests/{rid}/reforecast", timeout=10)  # POST only: a JSON 405
    assert again.status_code == 405 and "error" in again.json()
    resp = requests.post(f"{gw.url}/api/requests/{rid}/reforecast", timeout=30)
    assert resp.status_code == 202, resp.text
    new = resp.json()["request_id"]
    assert new != rid and resp.json()["replay_of"] == rid
    second = wait_for(f"{gw.url}/api/requests/{new}", lambda r: r.json()["done"]).json()
    assert second["status"] == "done" and second["replay_of"] == rid
    assert second["results"]["walk"]["forecast"]["yhat"] == first["results"]["walk"]["forecast"]["yhat"]


def test_two_gateways_and_a_restart_answer_every_request(gateways: tuple[Gateway, Gateway], data_url: str,
                                                         launch_gateway: Callable[..., Gateway]) -> None:
    a, b = gateways
    rid = requests.post(f"{a.url}/api/requests", json=fast_config(data_url, ["bumpy"]), timeout=30).json()["request_id"]
    on_a = wait_for(f"{a.url}/api/requests/{rid}", lambda r: r.json()["done"]).json()
    on_b = wait_for(f"{b.url}/api/requests/{rid}", lambda r: r.status_code == 200 and r.json()["done"]).json()
    assert on_b["results"] == on_a["results"] and on_b["origin"] == "gateway"

    assert a.stop() == 0  # graceful SIGTERM
    restarted = launch_gateway("gateway-a2", port=a.port)  # healthy = rebuilt from the topics
    again = requests.get(f"{restarted.url}/api/requests/{rid}", timeout=10)
    assert again.status_code == 200 and again.json()["results"] == on_a["results"]
    assert again.json()["title"] == "e2e" and again.json()["submitted_at"] == on_a["submitted_at"]
    events = [name for name, _ in sse(f"{restarted.url}/api/requests/{rid}/events")]
    assert events[-1] == "done" and "result" in events  # a finished request replays its events and closes


BAD_INPUTS = [
    ("not JSON", {"data": b"{nope", "headers": {"Content-Type": "application/json"}}, 400, "config"),
    ("JSON array", {"json": [1, 2]}, 400, "config"),
    ("deeply nested", {"data": b"[" * 100_000 + b"]" * 100_000, "headers": {"Content-Type": "application/json"}}, 400,
     "config"),
    ("no input_parameters", {"json": {"model_parameters": {}}}, 400, "config.input_parameters"),
    ("unknown model", {"json": make_config("http://x/y.csv", ["a"], models="naive,prophett")}, 400,
     "config.model_parameters.models"),
    ("too large", {"data": b"{" + b" " * (2 * 1024 * 1024) + b"}", "headers": {"Content-Type": "application/json"}},
     413, "body"),
    ("form without config", {"files": {"csv": ("a.csv", b"x,y\n")}}, 400, "config"),
    ("wrong content type", {"data": b"a=b", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415,
     "Content-Type"),
]


@pytest.mark.parametrize(("what", "kwargs", "status", "field"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_submissions_get_4xx_naming_the_field(gateways: tuple[Gateway, Gateway], what: str,
                                                  kwargs: dict[str, Any], status: int, field: str) -> None:
    resp = requests.post(f"{gateways[1].url}/api/requests", timeout=30, **kwargs)
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["field"] == field and body["error"], body


@pytest.mark.parametrize(("path", "status", "field"), [
    ("/api/requests/does-not-exist", 404, "request_id"),
    ("/api/requests/does-not-exist/events", 404, "request_id"),
    ("/api/requests/does-not-exist/results.csv", 404, "request_id"),
    ("/api/requests?limit=lots", 400, "limit"),
    ("/api/requests?limit=0", 400, "limit"),
    ("/no/such/path", 404, None),
])
def test_bad_lookups_get_4xx(gateways: tuple[Gateway, Gateway], path: str, status: int, field: str | None) -> None:
    resp = requests.get(f"{gateways[1].url}{path}", timeout=10)
    assert resp.status_code == status and resp.json()["field"] == field, resp.text


def test_dry_run_validates_without_submitting(gateways: tuple[Gateway, Gateway], data_url: str) -> None:
    gw = gateways[1]
    config = fast_config(data_url, ["trend"])
    config["surprise"] = 1
    before = requests.get(f"{gw.url}/api/requests", params={"limit": 1000}, timeout=10).json()["requests"]
    resp = requests.post(f"{gw.url}/api/requests", params={"dry_run": "1"}, json=config, timeout=10)
    assert resp.status_code == 200 and resp.json()["valid"] is True
    assert any("surprise" in w for w in resp.json()["warnings"])
    after = requests.get(f"{gw.url}/api/requests", params={"limit": 1000}, timeout=10).json()["requests"]
    assert len(after) == len(before)


def test_openapi_metrics_health(gateways: tuple[Gateway, Gateway]) -> None:
    gw = gateways[1]
    doc = requests.get(f"{gw.url}/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.")
    assert {"/health", "/metrics", "/api/requests", "/api/requests/{request_id}", "/api/requests/{request_id}/events",
            "/api/requests/{request_id}/results.csv", "/api/requests/{request_id}/results.json",
            "/api/requests/{request_id}/reforecast"} <= set(doc["paths"])
    assert requests.get(f"{gw.url}/health", timeout=10).json()["status"] == "ok"
    metrics = requests.get(f"{gw.url}/metrics", timeout=10).text
    assert "timex_gateway_requests_known" in metrics and 'timex_gateway_records_folded{topic="requests"}' in metrics
    assert "timex_gateway_requests_cached" in metrics and "timex_gateway_request_loads" in metrics


def test_openapi_document_lists_every_route() -> None:
    from gateway.api import create_app
    from gateway.openapi import openapi_document
    from gateway.state import RequestStore

    app = create_app(RequestStore("127.0.0.1:1"), producer=None)  # type: ignore[arg-type]  # nothing is started
    routes = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    documented = openapi_document()["paths"]
    assert routes == set(documented)
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp adds HEAD to every GET
            continue
        assert route.method.lower() in documented[route.resource.canonical], route  # type: ignore[union-attr]


def test_results_csv_keeps_intervals() -> None:
    from timex_stream.runtime.results import results_csv

    snap = {"results": {"s": {"model": "m", "history_timestamps": ["2000-01-01"], "history_values": [1.0],
                              "forecast": {"timestamps": ["2000-02-01"], "yhat": [2.0], "lower_80": [1.5],
                                           "upper_80": [2.5], "lower_95": None, "upper_95": None}}}}
    rows = list(csv.DictReader(io.StringIO(results_csv(snap))))
    assert rows[1] == {"series": "s", "timestamp": "2000-02-01", "kind": "forecast", "value": "2.0",
                       "lower_80": "1.5", "upper_80": "2.5", "lower_95": "", "upper_95": "", "model": "m"}
    assert rows[0]["kind"] == "history" and rows[0]["value"] == "1.0"
