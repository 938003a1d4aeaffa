"""The gateway's HTTP API (aiohttp): submit, status, server-sent events, results, live forecasts, listing,
re-forecast, stop."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from confluent_kafka import KafkaException, Producer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from forecasting.limits import RequestLimits
from gateway.auth import TokenTable, bearer_auth, user_of
from gateway.events import EventDiff, encode_event
from gateway.inputs import MAX_BODY_BYTES, ApiError, Submission, is_dry_run, origin_of, read_submission, validate
from gateway.openapi import openapi_document
from gateway.ratelimit import RateLimiter, rate_limited
from gateway.state import RequestStore, read_config_record
from schemas.keys import request_id_problem
from timex_stream.runtime.history import parse_time
from timex_stream.runtime.results import results_csv, results_json
from timex_stream.runtime.submit import forecast_request, send_request, stop_standing

log = logging.getLogger(__name__)
STORE = web.AppKey("store", RequestStore)
PRODUCER = web.AppKey("producer", Producer)
METRICS = web.AppKey("metrics", "GatewayMetrics")
LIMITS = web.AppKey("limits", RequestLimits)
HEARTBEAT_S = 15.0  # an SSE comment line now and then keeps proxies from closing an idle stream


class GatewayMetrics:
    def __init__(self, store: RequestStore, restarts: int = 0) -> None:
        self.registry = CollectorRegistry()
        Gauge("timex_service_restarts", "times `make up`'s supervisor started this service again",
              registry=self.registry).set(restarts)
        self.http = Counter("timex_gateway_http_requests", "HTTP requests answered", ["route", "status"],
                            registry=self.registry)
        self.submitted = Counter("timex_gateway_submitted", "requests produced to configs", ["origin"],
                                 registry=self.registry)
        known = Gauge("timex_gateway_requests_known", "requests this gateway can answer", registry=self.registry)
        known.set_function(store.count)
        cached = Gauge("timex_gateway_requests_cached", "requests whose answers are in memory (at most "
                       "TIMEX_GATEWAY_MAX_REQUESTS)", registry=self.registry)
        cached.set_function(store.cached)
        loads = Gauge("timex_gateway_request_loads", "requests read back from the topics on demand",
                      registry=self.registry)
        loads.set_function(lambda: store.loads)
        evictions = Gauge("timex_gateway_request_evictions", "requests evicted from memory (least recently used)",
                          registry=self.registry)
        evictions.set_function(lambda: store.evictions)
        folded = Gauge("timex_gateway_records_folded", "records read from the topics", ["topic"],
                       registry=self.registry)
        for topic in store.folded:
            folded.labels(topic).set_function(functools.partial(store.folded.get, topic, 0))
        skipped = Gauge("timex_gateway_records_skipped", "records skipped: undecodable or unreadable", ["topic"],
                        registry=self.registry)
        for topic in store.skipped:
            skipped.labels(topic).set_function(functools.partial(store.skipped.get, topic, 0))


def json_response(doc: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(doc, allow_nan=False), status=status, content_type="application/json")


@web.middleware
async def errors_as_json(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
    """Every error is `{"error": ..., "field": ...}`: 4xx for what the client sent, 5xx only for our faults."""
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    try:
        response = await handler(request)
    except ApiError as exc:
        response = json_response(exc.body(), exc.status)
        response.headers.update(exc.headers)
    except web.HTTPRequestEntityTooLarge:
        response = json_response({"error": f"the body is larger than {MAX_BODY_BYTES} bytes", "field": "body"}, 413)
    except web.HTTPException as exc:  # aiohttp's own 404/405 for unknown paths and methods
        response = json_response({"error": exc.reason, "field": None}, exc.status)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        response = json_response({"error": "internal error (logged by the gateway)", "field": None}, 500)
    request.app[METRICS].http.labels(route, str(response.status)).inc()
    return response


def _request_id(request: web.Request) -> str:
    """The path's request id, if the caller may see it: another user's id is as unknown as a made-up one."""
    rid = request.match_info["request_id"]
    problem = request_id_problem(rid)
    if problem:
        raise ApiError(400, problem, "request_id")
    if not request.app[STORE].visible(rid, user_of(request)):
        raise ApiError(404, f"unknown request id '{rid}'", "request_id")
    return rid


async def _snapshot(request: web.Request, rid: str | None = None) -> dict[str, Any]:
    """The request's data; read back from the topics when the gateway no longer holds it: off the loop."""
    store = request.app[STORE]
    snap = await asyncio.get_running_loop().run_in_executor(None, store.snapshot, rid or _request_id(request))
    assert snap is not None  # known ids always have one
    return snap


async def health(request: web.Request) -> web.Response:
    store = request.app[STORE]
    if store.error:
        return json_response({"status": "error", "error": store.error}, 503)
    if not store.caught_up.is_set():
        return json_response({"status": "catching up", "requests": store.count()}, 503)
    return json_response({"status": "ok", "service": "gateway", "requests": store.count()})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(request.app[METRICS].registry),
                        content_type=CONTENT_TYPE_LATEST.split(";")[0])


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())


async def _produce(request: web.Request, sub: Submission, origin: str, replay_of: str | None) -> str:
    owner = user_of(request)
    record = forecast_request(sub.config, csv=sub.csv, origin=origin, replay_of=replay_of, owner=owner)
    produce = functools.partial(send_request, request.app[PRODUCER], record)  # the record noted below, as sent
    try:
        rid = await asyncio.get_running_loop().run_in_executor(None, produce)
    except (KafkaException, BufferError, TimeoutError) as exc:
        log.error("produce failed: %s", exc)
        raise ApiError(503, f"Kafka did not take the request, try again: {exc}") from None
    request.app[STORE].note_submitted(record)
    request.app[METRICS].submitted.labels(origin).inc()
    return rid


def _accepted(rid: str, sub: Submission, replay_of: str | None = None) -> web.Response:
    base = f"/api/requests/{rid}"
    return json_response({"request_id": rid, "title": sub.title, "warnings": sub.warnings, "replay_of": replay_of,
                          "status_url": base, "events_url": f"{base}/events"}, 202)


async def create_request(request: web.Request) -> web.Response:
    origin = origin_of(request)
    sub = await read_submission(request, request.app[LIMITS])
    if is_dry_run(request):
        return json_response({"valid": True, "title": sub.title, "warnings": sub.warnings})
    rid = await _produce(request, sub, origin, None)
    return _accepted(rid, sub)


async def reforecast(request: web.Request) -> web.Response:
    old = _request_id(request)
    origin = origin_of(request)
    where = request.app[STORE].submitted(old)
    if where is None:
        raise ApiError(409, f"the config of '{old}' is not on the configs topic (expired, or sent without a key)",
                       "request_id")
    if where.offset is not None and where.offset < 0:  # indexed by `replay --topic datasets`: no configs record
        raise ApiError(409, f"'{old}' is a replay of prepared data: its config is not on the configs topic "
                       "(re-forecast the original)", "request_id")
    if where.offset is None:  # produced by this gateway a moment ago and not read back yet
        raise ApiError(409, f"'{old}' was submitted a moment ago; try again in a second", "request_id")
    record = await asyncio.get_running_loop().run_in_executor(
        None, read_config_record, request.app[STORE].bootstrap, where.partition, where.offset)
    # The limits may have changed since; an uploaded CSV is loaded to check them: off the event loop.
    sub = await asyncio.get_running_loop().run_in_executor(
        None, validate, record["config_json"], record["csv_data"], None, request.app[LIMITS])
    rid = await _produce(request, sub, origin, old)
    return _accepted(rid, sub, replay_of=old)


async def stop_request(request: web.Request) -> web.Response:
    """End a live (standing) request: its standing record, status stopped; the live service stops following it
    and its last revisions stay on `forecasts`. Only who may see the request may stop it."""
    rid = _request_id(request)
    stop = functools.partial(stop_standing, request.app[PRODUCER], rid, user_of(request))
    try:
        await asyncio.get_running_loop().run_in_executor(None, stop)
    except (KafkaException, BufferError, TimeoutError) as exc:
        log.error("produce failed: %s", exc)
        raise ApiError(503, f"Kafka did not take the stop, try again: {exc}") from None
    return json_response({"request_id": rid, "status": "stopped"}, 202)


async def list_requests(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        raise ApiError(400, "limit must be an integer", "limit") from None
    if not 1 <= limit <= 1000:
        raise ApiError(400, "limit must be between 1 and 1000", "limit")
    store = request.app[STORE]
    rows = await asyncio.get_running_loop().run_in_executor(None, store.listing, limit, user_of(request))
    return json_response({"requests": rows})


async def get_request(request: web.Request) -> web.Response:
    return json_response(await _snapshot(request))


async def results_as_json(request: web.Request) -> web.Response:
    snap = await _snapshot(request)
    response = json_response(results_json(snap))
    response.headers["Content-Disposition"] = f'attachment; filename="{snap["request_id"]}-results.json"'
    return response


async def results_as_csv(request: web.Request) -> web.Response:
    snap = await _snapshot(request)
    return web.Response(text=results_csv(snap), content_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{snap["request_id"]}-results.csv"'})


async def forecasts(request: web.Request) -> web.Response:
    """A live request's forecasts: the latest revision per series; `?at=TIME` the one current then (of the last
    revisions kept per series); `?since=N` also every kept revision numbered above N (what a page lacks)."""
    rid = _request_id(request)
    at_ms = since = None
    if "at" in request.query:
        try:
            at_ms = parse_time(request.query["at"])
        except ValueError as exc:
            raise ApiError(400, str(exc), "at") from None
    if "since" in request.query:
        try:
            since = int(request.query["since"])
        except ValueError:
            raise ApiError(400, "since must be a revision number (an integer)", "since") from None
    store = request.app[STORE]
    doc = await asyncio.get_running_loop().run_in_executor(None, store.revisions, rid, at_ms, since)
    return json_response(doc)


async def events(request: web.Request) -> web.StreamResponse:
    rid = _request_id(request)
    store = request.app[STORE]
    changed = asyncio.Event()
    unsubscribe = store.subscribe(rid, asyncio.get_running_loop(), lambda _rid: changed.set())
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    diff = EventDiff()
    try:
        await response.prepare(request)
        while True:
            changed.clear()
            snap = await _snapshot(request, rid)
            for name, data in diff.events(snap, store.new_revisions(rid, diff.revisions_sent)):
                await response.write(encode_event(name, data))
            if diff.finished:
                break
            try:
                await asyncio.wait_for(changed.wait(), HEARTBEAT_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
    except ConnectionResetError:
        pass  # the client went away
    finally:
        unsubscribe()
    return response


def create_app(store: RequestStore, producer: Producer, tokens: TokenTable | None = None,
               writes: RateLimiter | None = None, reads: RateLimiter | None = None,
               limits: RequestLimits | None = None, restarts: int = 0) -> web.Application:
    """`tokens` None: no auth (every request is everyone's); rate limits off unless given; `limits`: the
    request limits (defaults unless given); `restarts`: how often `make up` started this gateway again."""
    rates = rate_limited(writes or RateLimiter(0, 1), reads or RateLimiter(0, 1))
    app = web.Application(middlewares=[errors_as_json, bearer_auth(tokens), rates], client_max_size=MAX_BODY_BYTES)
    app[STORE], app[PRODUCER], app[METRICS] = store, producer, GatewayMetrics(store, restarts)
    app[LIMITS] = limits or RequestLimits()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_post("/api/requests", create_request)
    app.router.add_get("/api/requests", list_requests)
    app.router.add_get("/api/requests/{request_id}", get_request)
    app.router.add_delete("/api/requests/{request_id}", stop_request)
    app.router.add_get("/api/requests/{request_id}/events", events)
    app.router.add_get("/api/requests/{request_id}/forecasts", forecasts)
    app.router.add_get("/api/requests/{request_id}/results.json", results_as_json)
    app.router.add_get("/api/requests/{request_id}/results.csv", results_as_csv)
    app.router.add_post("/api/requests/{request_id}/reforecast", reforecast)
    return app
