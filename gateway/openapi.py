"""The OpenAPI 3.1 description of the gateway, served at /openapi.json (a test checks it lists every route)."""

from __future__ import annotations

from typing import Any

from gateway.inputs import MAX_BODY_BYTES
from schemas.keys import REQUEST_ID_MAX, REQUEST_ID_PATTERN, REQUEST_ID_RULE

_ERROR = {"description": "what was wrong and which field", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_ID = {"name": "request_id", "in": "path", "required": True, "description": REQUEST_ID_RULE,
       "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN, "maxLength": REQUEST_ID_MAX}}
_ORIGIN = {"name": "origin", "in": "query", "schema": {"type": "string", "enum": ["gateway", "webapp"],
                                                         "default": "gateway"}}
_ACCEPTED = {"description": "produced to `configs`; follow it with the URLs given",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}}


def _get(summary: str, content_type: str = "application/json", with_id: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "OK", "content": {
        content_type: {}}}}}
    if with_id:
        op["parameters"] = [_ID]
        op["responses"]["400"] = op["responses"]["404"] = _ERROR
    return {"get": op}


def openapi_document() -> dict[str, Any]:
    doc = _document()
    for path, ops in doc["paths"].items():
        if path.startswith("/api/"):  # with TIMEX_API_TOKENS set: a bearer token, and a per-user rate limit
            for op in ops.values():
                op["security"] = [{"bearer": []}, {}]
                op["responses"] |= {"401": _ERROR, "429": {**_ERROR, "description": "over the per-user rate limit; "
                                                                                     "see the Retry-After header"}}
    return doc


def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "TIMEX Stream gateway", "version": "1.0.0",
                 "description": "Submit TIMEX configs to Kafka and follow their forecasts."},
        "paths": {
            "/health": {"get": {"summary": "200 once the request state is rebuilt from the topics, else 503",
                                "responses": {"200": {"description": "ready"}, "503": {"description": "not yet"}}}},
            "/metrics": _get("Prometheus metrics", "text/plain", with_id=False),
            "/openapi.json": _get("this document", with_id=False),
            "/api/requests": {
                "post": {
                    "summary": "submit a TIMEX config (JSON body), or multipart `config` + optional `csv` file",
                    "parameters": [_ORIGIN, {"name": "dry_run", "in": "query", "schema": {"type": "boolean"},
                                             "description": "only validate; 200 with warnings"}],
                    "requestBody": {"required": True, "description": f"at most {MAX_BODY_BYTES} bytes", "content": {
                        "application/json": {"schema": {"type": "object", "description": "a TIMEX config"}},
                        "multipart/form-data": {"schema": {"type": "object", "required": ["config"], "properties": {
                            "config": {"type": "string", "format": "binary"},
                            "csv": {"type": "string", "format": "binary"}}}}}},
                    "responses": {"202": _ACCEPTED, "200": {"description": "dry run: the config is valid"},
                                  "400": _ERROR, "413": _ERROR, "415": _ERROR, "503": _ERROR}},
                "get": {"summary": "recent requests, newest first",
                        "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "default": 50}}],
                        "responses": {"200": {"description": "{requests: [...]}"}, "400": _ERROR}}},
            "/api/requests/{request_id}": {
                **_get("status, progress per series, results (BestModel per series), the config's visualization "
                       "parameters and failures"),
                "delete": {"summary": "stop a live (standing) request: its forecasts stop updating, the last "
                                      "revision of each series stays on the forecasts topic",
                           "parameters": [_ID],
                           "responses": {"202": {"description": "{request_id, status: stopped}"}, "400": _ERROR,
                                         "404": _ERROR, "503": _ERROR}}},
            "/api/requests/{request_id}/events": _get(
                "server-sent events: progress, result, failure, revision (each ForecastRevision of a live request, "
                "with `published_at`: first the latest per series), accuracy (after a revision that carries it: "
                "the accuracy topic's record of it), done (a live request: once stopped)",
                "text/event-stream"),
            "/api/requests/{request_id}/forecasts": {"get": {
                "summary": "a live (standing) request's forecasts: per series its latest ForecastRevision (the "
                           "forecast with 80/95 % intervals, the model, the actuals it folded in, `published_at`)",
                "parameters": [_ID, {"name": "at", "in": "query", "schema": {"type": "string"},
                                     "description": "TIME (ISO 8601, UTC unless an offset is given, or -30m/-2h/-7d): "
                                                    "per series the revision that was current then, among the last "
                                                    "200 kept per series (fewer past 25 series; a series with none "
                                                    "kept from before is left out)"},
                               {"name": "since", "in": "query", "schema": {"type": "integer"},
                                "description": "also `revisions`: per series every kept revision numbered above "
                                               "this, oldest first"}],
                "responses": {"200": {"description": "{request_id, live: waiting|live|stopped|null (not a live "
                                                     "request), at, series: {name: revision}, revisions?}",
                                      "content": {"application/json": {}}},
                              "400": _ERROR, "404": _ERROR}}},
            "/api/requests/{request_id}/results.json": _get("results as a JSON download"),
            "/api/requests/{request_id}/results.csv": _get("history and forecast with intervals, one row per point",
                                                           "text/csv"),
            "/api/requests/{request_id}/reforecast": {"post": {
                "summary": "submit the same config (and uploaded CSV) again, as a new request linked to this one",
                "parameters": [_ID, _ORIGIN],
                "responses": {"202": _ACCEPTED, "400": _ERROR, "404": _ERROR, "409": _ERROR}}},
        },
        "components": {"securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "needed on /api/... when the gateway runs with TIMEX_API_TOKENS; each user sees only "
                           "the requests they submitted"}}, "schemas": {
            "Error": {"type": "object", "required": ["error", "field"], "properties": {
                "error": {"type": "string"}, "field": {"type": ["string", "null"]},
                "errors": {"type": "array", "items": {"type": "object"}}}},
            "Accepted": {"type": "object", "properties": {
                "request_id": {"type": "string"}, "title": {"type": ["string", "null"]},
                "warnings": {"type": "array", "items": {"type": "string"}}, "replay_of": {"type": ["string", "null"]},
                "status_url": {"type": "string"}, "events_url": {"type": "string"}}}}},
    }
