"""The Dash app: upload a TIMEX config (and optionally its CSV) or start from an example, watch the request,
see the forecasts; past requests can be opened or re-forecast. Every call goes to the gateway. Each request has
its own address, /requests/ID (bookmark, reload, share). A live (standing) request's charts change in place as
its revisions arrive (webapp.live), and it can be stopped.

A gateway with tokens: the webapp sends the token it was given (TIMEX_API_TOKEN, set by `make up`), or, when
the gateway answers 401, asks its user once and keeps the token in an HttpOnly session cookie (the download
links are plain GETs, so a token only the page's JavaScript knew could not reach them)."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import dash
import flask
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from webapp.gateway_client import GatewayClient
from webapp.live import LIVE_WORDS, SeriesState, live_panel, live_patch, revision_text
from webapp.views import history_rows, progress_table, results_panel, status_line

HERE = Path(__file__).parent
EXAMPLES = HERE / "examples"
POLL_MS = 1000
HISTORY_POLL_MS = 3000
LIVE_POLL_MS = 500  # a live chart moves within a second of a revision (the gateway answers from memory)
REQUEST_PATH = "/requests/"
TOKEN_COOKIE = "timex_api_token"
NEEDS_TOKEN = "The gateway needs an API token: enter it under “API token” (`make up` prints it after `ready:`)."

INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
{%metas%}
<title>{%title%}</title>
<link rel="icon" type="image/svg+xml" href="/assets/favicon.svg">
{%css%}
</head>
<body>
{%app_entry%}
<footer>{%config%}{%scripts%}{%renderer%}</footer>
</body>
</html>"""


def examples() -> dict[str, Path]:
    """Bundled example configs; each ships its CSV next to it (same name), uploaded with the config."""
    return {p.stem: p for p in sorted(EXAMPLES.glob("*.json"))}


def layout() -> html.Div:
    upload_style = {"className": "upload"}
    return html.Div([
        html.Header([html.H1("TIMEX Stream"), html.P("Forecasting as a service on Kafka", className="muted")]),
        html.Main([
            html.Aside([
                html.Div([
                    html.H2("API token"),
                    html.P("This gateway serves only its users: paste your token (kept for this browser session).",
                           className="muted"),
                    dcc.Input(id="token-input", type="password", placeholder="token", autoComplete="off",
                              className="token-input"),
                    html.Button("Use token", id="token-submit", className="secondary"),
                ], id="token-box", hidden=True),
                html.Div(id="token-message", className="message"),  # outside the box: still seen once it hides
                html.H2("New forecast"),
                dcc.Upload(id="upload-config", children=html.Div(["Drop a TIMEX config (.json) here, or ",
                                                                    html.A("choose a file")]),
                           accept=".json,application/json", **upload_style),
                dcc.Upload(id="upload-csv", children=html.Div(["Optional: drop the CSV data here, or ",
                                                                html.A("choose a file")]),
                           accept=".csv,text/csv", **upload_style),
                html.Div([dcc.Dropdown(id="example", options=list(examples()), value=next(iter(examples()), None),
                                       clearable=False, className="example-pick"),
                          html.Button("Use example", id="use-example", className="secondary")],
                         className="example-row"),
                html.Div(id="staged-message", className="message"),
                html.Button("Forecast", id="submit", disabled=True, className="primary"),
                html.Div(id="action-message", className="message"),
                html.H2("Past requests"),
                html.Div(id="history"),
            ], className="side"),
            html.Section([
                html.Div(id="status", children=html.P("Upload a config or pick an example to start.",
                                                      className="muted")),
                html.Div(id="downloads"),
                html.Div(id="progress"),
                html.Div(id="live"),
                html.Div(id="results"),
            ], className="content"),
        ]),
        dcc.Location(id="url", refresh=False),
        dcc.Store(id="staged"),
        dcc.Store(id="current"),
        dcc.Store(id="live-shown"),
        dcc.Interval(id="live-poll", interval=LIVE_POLL_MS, disabled=True),
        dcc.Store(id="results-key"),
        dcc.Store(id="history-key"),
        dcc.Store(id="auth-changed"),
        dcc.Interval(id="poll", interval=POLL_MS, disabled=True),
        dcc.Interval(id="history-poll", interval=HISTORY_POLL_MS),
    ], className="page")


def request_path(rid: str) -> str:
    """A request's address in the web app."""
    return REQUEST_PATH + quote(rid, safe="")


def _decode_upload(contents: str) -> bytes:
    try:
        return base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (IndexError, binascii.Error):
        raise ValueError("the upload could not be read") from None


def _message(text: str, kind: str) -> html.Div:
    return html.Div(text, className=f"message-{kind}")  # no id: two messages of a kind can be on the page at once


def _refused(status: int, doc: dict[str, Any]) -> str | None:
    """The plain words for an answer that is about the caller, not the config: no token, or too many calls."""
    if status == 401:
        return NEEDS_TOKEN
    if status == 429:
        return f"Too many requests for now: {doc['error']}."
    return None


def create_app(gateway_url: str, token: str | None = None) -> dash.Dash:
    """`token`: sent to the gateway on every call, unless the browser's user entered their own."""
    configured = GatewayClient(gateway_url, token)

    def gateway_for_caller() -> GatewayClient:
        return configured.for_token(flask.request.cookies.get(TOKEN_COOKIE))
    app = dash.Dash(__name__, title="TIMEX Stream", assets_folder=str(HERE / "assets"), update_title=None,
                    suppress_callback_exceptions=True, index_string=INDEX)
    app.layout = layout

    @app.server.route("/health")
    def health() -> flask.Response:
        return flask.jsonify({"status": "ok", "service": "webapp", "gateway": configured.base_url,
                              "api_token": "configured" if configured.has_token else "asked from the user"})

    @app.server.route("/download/<rid>.<fmt>")
    def download(rid: str, fmt: str) -> flask.Response:
        if fmt not in ("csv", "json"):
            flask.abort(404)
        resp = gateway_for_caller().download(rid, fmt)
        return flask.Response(resp.content, status=resp.status_code, content_type=resp.headers.get("Content-Type"),
                              headers={"Content-Disposition": resp.headers.get("Content-Disposition", "")})

    @app.callback(Output("staged", "data"), Output("staged-message", "children"), Output("submit", "disabled"),
                  Input("upload-config", "contents"), Input("upload-csv", "contents"), Input("use-example", "n_clicks"),
                  State("upload-config", "filename"), State("upload-csv", "filename"), State("example", "value"),
                  State("staged", "data"), prevent_initial_call=True)
    def stage(config_contents: str | None, csv_contents: str | None, _clicks: int | None, config_name: str | None,
              csv_name: str | None, example: str | None, staged: dict[str, Any] | None) -> tuple[Any, Any, bool]:
        staged = dict(staged or {})
        try:
            if ctx.triggered_id == "use-example" and example in examples():
                path = examples()[example]
                staged = {"config": path.read_text(), "config_name": path.name,
                          "csv": base64.b64encode(path.with_suffix(".csv").read_bytes()).decode(),
                          "csv_name": path.with_suffix(".csv").name}
            elif ctx.triggered_id == "upload-config" and config_contents:
                staged["config"] = _decode_upload(config_contents).decode("utf-8")
                staged["config_name"] = config_name
            elif ctx.triggered_id == "upload-csv" and csv_contents:
                staged["csv"] = base64.b64encode(_decode_upload(csv_contents)).decode()
                staged["csv_name"] = csv_name
        except (ValueError, UnicodeDecodeError) as exc:
            return staged, _message(f"{config_name or csv_name or 'The file'}: {exc}", "error"), True
        if not staged.get("config"):
            return staged, _message(f"Data {staged.get('csv_name')} ready; now upload a config.", "info"), True
        csv = base64.b64decode(staged["csv"]) if staged.get("csv") else None
        status, doc = gateway_for_caller().validate(staged["config"], csv, staged.get("csv_name"))
        name = staged.get("config_name") or "the config"
        if refused := _refused(status, doc):
            return staged, _message(refused, "error"), True
        if status != 200:
            hint = " Upload the CSV too, or give a source_data_url." \
                if doc.get("field") == "config.input_parameters.source_data_url" else ""
            where = f" (field {doc['field']})" if doc.get("field") else ""
            return staged, _message(f"{name} is not a valid TIMEX config: {doc['error']}{where}.{hint}", "error"), True
        data = f" with data {staged['csv_name']}" if staged.get("csv") else ""
        warnings = [html.Li(w) for w in doc.get("warnings", [])]
        text = f"Ready: “{doc.get('title') or name}”{data}. Press Forecast."
        return staged, html.Div([_message(text, "ok"), html.Ul(warnings) if warnings else None]), False

    @app.callback(Output("current", "data"), Input("url", "pathname"))
    def route(path: str | None) -> str | None:
        """The request an address shows: /requests/ID (a shared link, a reload), none at /."""
        rid = unquote(path[len(REQUEST_PATH):]) if path and path.startswith(REQUEST_PATH) else ""
        return rid or None

    @app.callback(Output("url", "pathname"), Output("action-message", "children"),
                  Input("submit", "n_clicks"), Input({"type": "open", "rid": ALL}, "n_clicks"),
                  Input({"type": "reforecast", "rid": ALL}, "n_clicks"), State("staged", "data"),
                  prevent_initial_call=True)
    def choose(_submit: int | None, _open: list[int | None], _again: list[int | None],
               staged: dict[str, Any] | None) -> tuple[Any, Any]:
        if not ctx.triggered or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # a re-rendered history list, not a click
        trigger = ctx.triggered_id
        if trigger == "submit":
            if not staged or not staged.get("config"):
                raise PreventUpdate
            csv = base64.b64decode(staged["csv"]) if staged.get("csv") else None
            status, doc = gateway_for_caller().submit(staged["config"], csv, staged.get("csv_name"))
        elif trigger["type"] == "open":
            return request_path(trigger["rid"]), None
        else:
            status, doc = gateway_for_caller().reforecast(trigger["rid"])
        if status != 202:
            return dash.no_update, _message(_refused(status, doc) or f"Not submitted: {doc['error']}", "error")
        return request_path(doc["request_id"]), _message(f"Submitted as {doc['request_id']}.", "ok")

    @app.callback(Output("status", "children"), Output("progress", "children"), Output("results", "children"),
                  Output("downloads", "children"), Output("results-key", "data"), Output("poll", "disabled"),
                  Output("live", "children"), Output("live-shown", "data", allow_duplicate=True),
                  Output("live-poll", "disabled"),
                  Input("poll", "n_intervals"), Input("current", "data"), State("results-key", "data"),
                  prevent_initial_call=True)
    def follow(_n: int | None, rid: str | None, shown: str | None) -> tuple[Any, ...]:
        if not rid:
            return (html.P("Upload a config or pick an example to start.", className="muted"), None, None, None,
                    None, True, None, None, True)
        gateway = gateway_for_caller()
        status, snap = gateway.request(rid)
        if status == 404:  # just submitted through another gateway replica: it appears within a moment
            return (_message(f"Waiting for {rid} to appear…", "info"), None, None, None, None, False, None, None,
                    True)
        if status != 200:
            return (_message(_refused(status, snap) or snap["error"], "error"), dash.no_update, dash.no_update, None,
                    shown, False, dash.no_update, dash.no_update, True)
        live = snap.get("live")
        # Charts are rebuilt only when a result or failure arrives (or a live series' first revision), so they do
        # not flicker on every poll; a live request's charts then change in place (live_changes).
        key = json.dumps([rid, sorted((s, r["decided_at"]) for s, r in snap["results"].items()),
                          len(snap["failures"]), sorted((live or {}).get("series") or [])])
        results = results_panel(snap) if key != shown else dash.no_update
        panel, live_shown = dash.no_update, dash.no_update
        if live is None:
            panel, live_shown = None, None
        elif key != shown:
            _status, forecasts = gateway.forecasts(rid, since=-1)
            panel, live_shown = live_panel(snap, forecasts if _status == 200 else {})
        downloads = html.Div([html.A("Download results (CSV)", href=f"/download/{rid}.csv", className="button"),
                              html.A("JSON", href=f"/download/{rid}.json", className="button")],
                             className="downloads") if snap["results"] else None
        # A live request is polled here until its every series is answered and has a chart (its key is final),
        # then only by live_changes.
        settled = snap["done"] and (live is None or set(live["series"]) >= set(snap["results"]))
        return (status_line(snap), progress_table(snap), results, downloads, key, settled, panel, live_shown,
                live is None or live["state"] == "stopped")

    @app.callback(Output({"type": "live-chart", "series": ALL}, "figure"),
                  Output({"type": "live-error", "series": ALL}, "figure"),
                  Output({"type": "live-revision", "series": ALL}, "children"),
                  Output("live-shown", "data"), Output("live-state", "children"), Output("live-poll", "disabled",
                                                                                         allow_duplicate=True),
                  Output("poll", "disabled", allow_duplicate=True),
                  Input("live-poll", "n_intervals"), State("live-shown", "data"),
                  State({"type": "live-chart", "series": ALL}, "id"), prevent_initial_call=True)
    def live_changes(_n: int | None, shown: dict[str, Any] | None, charts: list[dict[str, str]]) -> tuple[Any, ...]:
        """Each new revision changes its chart in place (a Patch: no redraw of the whole figure)."""
        if not shown or not charts:
            raise PreventUpdate
        states = {name: SeriesState(doc) for name, doc in shown["series"].items()}
        since = min((st.revision for st in states.values()), default=-1)
        status, doc = gateway_for_caller().forecasts(shown["rid"], since=since)
        if status != 200:
            raise PreventUpdate
        revisions = doc.get("revisions") or {}
        figures, errors, texts = [], [], []
        for chart in charts:
            name = chart["series"]
            state = states.setdefault(name, SeriesState())
            patches = live_patch(state, revisions.get(name) or [])
            figures.append(patches[0] if patches else dash.no_update)
            errors.append(patches[1] if patches else dash.no_update)
            texts.append(revision_text(doc["series"].get(name)) if patches else dash.no_update)
        stopped = doc.get("live") == "stopped"
        # A series answered after the page was drawn: the main poll draws its chart.
        new_series = bool(set(revisions) - {c["series"] for c in charts})
        return (figures, errors, texts, {"rid": shown["rid"], "series": {n: st.as_doc() for n, st in states.items()}},
                LIVE_WORDS.get(doc.get("live") or "", "Live"), stopped,
                False if new_series or stopped else dash.no_update)

    @app.callback(Output("live-stop-message", "children"), Output("live-stop", "disabled"),
                  Input("live-stop", "n_clicks"), State("current", "data"), prevent_initial_call=True)
    def stop(clicks: int | None, rid: str | None) -> tuple[Any, bool]:
        if not clicks or not rid:
            raise PreventUpdate
        status, doc = gateway_for_caller().stop(rid)
        if status != 202:
            return _message(_refused(status, doc) or f"Not stopped: {doc['error']}", "error"), False
        return _message("Stopped: the forecasts stop updating; the last one stays.", "ok"), True

    @app.callback(Output("history", "children"), Output("history-key", "data"), Output("token-box", "hidden"),
                  Input("history-poll", "n_intervals"), Input("current", "data"), Input("results-key", "data"),
                  Input("auth-changed", "data"), State("history-key", "data"))
    def history(_n: int | None, _rid: str | None, _results: str | None, _auth: int | None,
                shown: str | None) -> tuple[Any, Any, bool]:
        status, doc = gateway_for_caller().listing(20)
        if status == 401:  # the listing runs on page load: a token-protected gateway asks for the token at once
            return _message(NEEDS_TOKEN, "error"), None, False
        if status != 200:
            return _message(_refused(status, doc) or doc["error"], "error"), None, dash.no_update
        rows = doc["requests"]
        key = json.dumps([(r["request_id"], r["status"], r.get("live")) for r in rows])
        if key == shown:
            raise PreventUpdate  # unchanged: keep the buttons (and any click in flight)
        return history_rows(rows), key, True

    @app.callback(Output("token-message", "children"), Output("token-input", "value"),
                  Output("auth-changed", "data"), Input("token-submit", "n_clicks"), Input("token-input", "n_submit"),
                  State("token-input", "value"), State("auth-changed", "data"), prevent_initial_call=True)
    def use_token(_clicks: int | None, _enter: int | None, token: str | None, changed: int | None
                  ) -> tuple[Any, str, Any]:
        token = (token or "").strip()
        if not token:
            return _message("Paste the token first.", "error"), "", dash.no_update
        status, doc = configured.for_token(token).listing(1)  # checked before it is kept
        if status == 401:
            return _message("The gateway did not accept this token.", "error"), "", dash.no_update
        if status != 200:
            return _message(_refused(status, doc) or doc["error"], "error"), "", dash.no_update
        ctx.response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict",
                                secure=flask.request.is_secure)  # no max_age: gone when the browser closes
        return _message("Token accepted.", "ok"), "", (changed or 0) + 1

    return app
