"""A live (standing) request's page: per series one chart drawn once, then changed in place (a Dash `Patch`) as
revisions arrive: the actuals extend, the current forecast and its bands move, each revision's next-step
forecast stays as a dot against the actuals it was made for, and a marker shows where the model changed; below
it the rolling error (ForecastRevision.accuracy) with the threshold above which it is drift.
Pure functions of the gateway's JSON (`/api/requests/{id}` and `/forecasts?since=`)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import Patch, dcc, html

# The traces of a live chart, by index: a patch addresses them by position.
ACTUALS, BAND_95, BAND_80, FORECAST, REALISED, MODEL_CHANGES = range(6)
ERROR, THRESHOLD, ERROR_CHANGES = range(3)  # the rolling-error chart's
LIVE_WORDS = {"waiting": "Live: waiting for enough points", "live": "Live", "stopped": "Stopped"}


def _band(fc: dict[str, Any], level: str) -> tuple[list[Any], list[float]]:
    lower, upper = fc.get(f"lower_{level}"), fc.get(f"upper_{level}")
    if not lower or not upper:
        return [], []
    x = list(fc["timestamps"])
    return x + x[::-1], list(upper) + list(lower)[::-1]


def _tag(revision: dict[str, Any]) -> str:
    return f"revision {revision['revision']}: {revision['model']}"


class SeriesState:
    """What a series' chart shows, kept in the page (a dcc.Store) so a patch adds only what is new."""

    def __init__(self, doc: dict[str, Any] | None = None) -> None:
        doc = doc or {}
        self.revision: int = doc.get("revision", -1)
        self.last_actual: str = doc.get("last_actual", "")
        self.model: str | None = doc.get("model")
        self.switched_at: int = doc.get("switched_at", 0)  # the trigger of the last switch shown

    def as_doc(self) -> dict[str, Any]:
        return {"revision": self.revision, "last_actual": self.last_actual, "model": self.model,
                "switched_at": self.switched_at}

    def fold(self, revisions: list[dict[str, Any]]) -> dict[str, Any]:
        """The new revisions (oldest first) → what to add: actuals, realised next-step forecasts, model changes,
        and the latest revision (whose forecast the chart shows)."""
        new = [r for r in revisions if r["revision"] > self.revision]
        adds: dict[str, Any] = {"actuals": ([], []), "realised": ([], [], []), "changes": ([], [], []),
                                "errors": ([], []), "thresholds": ([], []), "error_changes": ([], [], []),
                                "latest": new[-1] if new else None}
        for r in new:
            for stamp, value in zip(r.get("actual_timestamps") or [], r.get("actual_values") or [], strict=False):
                if stamp[:19] > self.last_actual[:19]:  # ISO 8601 (to the second): text order is time order
                    adds["actuals"][0].append(stamp)
                    adds["actuals"][1].append(value)
                    self.last_actual = stamp
            fc = r["forecast"]
            if fc["timestamps"]:
                adds["realised"][0].append(fc["timestamps"][0])
                adds["realised"][1].append(fc["yhat"][0])
                adds["realised"][2].append(_tag(r))
            accuracy = r.get("accuracy") or {}
            if accuracy.get("error") is not None:
                adds["errors"][0].append(r["last_timestamp"])
                adds["errors"][1].append(accuracy["error"])
            if accuracy.get("threshold") is not None:
                adds["thresholds"][0].append(r["last_timestamp"])
                adds["thresholds"][1].append(accuracy["threshold"])
            # `switched` is on every revision of a re-selected model: a change is a new trigger (or a new model)
            switched_at = (r.get("switched") or {}).get("triggered_at", self.switched_at)
            if switched_at != self.switched_at or (self.model is not None and r["model"] != self.model):
                why = change_text(self.model, r)
                adds["changes"][0].append(r["last_timestamp"])
                adds["changes"][1].append(fc["yhat"][0] if fc["yhat"] else None)
                adds["changes"][2].append(why)
                adds["error_changes"][0].append(r["last_timestamp"])
                adds["error_changes"][1].append((r.get("switched") or {}).get("rolling_error") or accuracy.get("error")
                                                or 0.0)
                adds["error_changes"][2].append(why)
            self.model, self.revision, self.switched_at = r["model"], r["revision"], switched_at
        return adds


def change_text(old_model: str | None, revision: dict[str, Any]) -> str:
    """Why the model changed, in words (ForecastRevision.switched: drift or schedule, both errors)."""
    switched = revision.get("switched")
    text = f"model changed: {switched['from_model'] if switched else old_model} → {revision['model']}"
    if switched:
        old = switched.get("old_error")
        text += (f" ({switched['reason']}; on the latest window: {'failed' if old is None else f'{old:.4g}'} → "
                 f"{switched['new_error']:.4g})")
    return f"{text}, revision {revision['revision']}"


def error_figure(name: str, adds: dict[str, Any], estimator: str) -> go.Figure:
    """The rolling error over time, the threshold above which it is drift, and where the model changed."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=adds["errors"][0], y=adds["errors"][1], name=f"rolling {estimator.upper()}",
                             mode="lines+markers", line={"color": "#dd6b20"}, marker={"size": 4}))
    fig.add_trace(go.Scatter(x=adds["thresholds"][0], y=adds["thresholds"][1], name="threshold (drift above)",
                             mode="lines", line={"color": "#c53030", "dash": "dash", "shape": "hv"}))
    fig.add_trace(go.Scatter(x=adds["error_changes"][0], y=adds["error_changes"][1], text=adds["error_changes"][2],
                             name="model changed", mode="markers",
                             marker={"color": "#c53030", "size": 13, "symbol": "diamond"},
                             hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(title={"text": f"{name}: realised error", "x": 0.01}, height=260,
                      margin={"l": 48, "r": 16, "t": 48, "b": 36}, legend={"orientation": "h", "y": -0.25},
                      uirevision=name, template="plotly_white")
    return fig


def live_figure(name: str, best: dict[str, Any] | None, revisions: list[dict[str, Any]]
                ) -> tuple[go.Figure, go.Figure, SeriesState]:
    """The charts of one series: the selection's history, then every kept revision folded in; the rolling
    error."""
    state = SeriesState()
    hist_x = list((best or {}).get("history_timestamps") or [])
    hist_y = list((best or {}).get("history_values") or [])
    state.last_actual = max(hist_x) if hist_x else ""
    state.model = (best or {}).get("model")
    adds = state.fold(revisions)
    latest = adds["latest"]
    fc = latest["forecast"] if latest else ((best or {}).get("forecast") or {"timestamps": [], "yhat": []})
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=hist_x + adds["actuals"][0], y=hist_y + adds["actuals"][1], name="actuals",
                             mode="lines", line={"color": "#4a5568"}))
    for level, color in (("95", "rgba(49,130,206,0.15)"), ("80", "rgba(49,130,206,0.30)")):
        x, y = _band(fc, level)
        fig.add_trace(go.Scatter(x=x, y=y, fill="toself", fillcolor=color, mode="lines", line={"width": 0},
                                 hoverinfo="skip", name=f"{level} % interval"))
    model = latest["model"] if latest else (best or {}).get("model")
    fig.add_trace(go.Scatter(x=fc["timestamps"], y=fc["yhat"], name=f"forecast ({model})", mode="lines+markers",
                             line={"color": "#3182ce", "width": 2}, marker={"size": 4}))
    fig.add_trace(go.Scatter(x=adds["realised"][0], y=adds["realised"][1], text=adds["realised"][2],
                             name="next-step forecast of each revision", mode="markers",
                             marker={"color": "#dd6b20", "size": 5}, hovertemplate="%{text}<br>%{y}<extra></extra>"))
    fig.add_trace(go.Scatter(x=adds["changes"][0], y=adds["changes"][1], text=adds["changes"][2],
                             name="model changed", mode="markers",
                             marker={"color": "#c53030", "size": 13, "symbol": "diamond"},
                             hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(title={"text": f"{name}: live forecast", "x": 0.01}, height=360,
                      margin={"l": 48, "r": 16, "t": 48, "b": 36}, legend={"orientation": "h", "y": -0.15},
                      uirevision=name, template="plotly_white")
    estimator = ((latest or {}).get("accuracy") or {}).get("estimator") or (best or {}).get(
        "main_accuracy_estimator") or "error"
    return fig, error_figure(name, adds, estimator), state


def live_patch(state: SeriesState, revisions: list[dict[str, Any]]) -> tuple[Patch, Patch] | None:
    """The changes the charts need for `revisions` (None: nothing new); `state` moves on."""
    adds = state.fold(revisions)
    latest = adds["latest"]
    if latest is None:
        return None
    errors = Patch()
    for index, key in ((ERROR, "errors"), (THRESHOLD, "thresholds"), (ERROR_CHANGES, "error_changes")):
        if adds[key][0]:
            for axis, values in zip(("x", "y", "text"), adds[key], strict=False):
                errors["data"][index][axis].extend(values)
    patch = Patch()
    if adds["actuals"][0]:
        patch["data"][ACTUALS]["x"].extend(adds["actuals"][0])
        patch["data"][ACTUALS]["y"].extend(adds["actuals"][1])
    fc = latest["forecast"]
    for index, level in ((BAND_95, "95"), (BAND_80, "80")):
        x, y = _band(fc, level)
        patch["data"][index]["x"], patch["data"][index]["y"] = x, y
    patch["data"][FORECAST]["x"], patch["data"][FORECAST]["y"] = fc["timestamps"], fc["yhat"]
    patch["data"][FORECAST]["name"] = f"forecast ({latest['model']})"
    for index, key in ((REALISED, "realised"), (MODEL_CHANGES, "changes")):
        if adds[key][0]:
            for axis, values in zip(("x", "y", "text"), adds[key], strict=True):
                patch["data"][index][axis].extend(values)
    return patch, errors


def revision_text(revision: dict[str, Any] | None) -> str:
    if revision is None:
        return "no revision yet"
    fc = revision["forecast"]
    nxt = f"; next {fc['timestamps'][0][:19]}: {fc['yhat'][0]:.4g}" if fc["timestamps"] else ""
    accuracy = revision.get("accuracy") or {}
    error = f" · rolling {accuracy['estimator'].upper()} {accuracy['error']:.4g}" \
        if accuracy.get("error") is not None else ""
    return (f"revision {revision['revision']} · last point {revision['last_timestamp'][:19]}{nxt} · "
            f"{revision['model']}{error}")


def live_panel(snap: dict[str, Any], forecasts: dict[str, Any]) -> tuple[html.Div, dict[str, Any]]:
    """The live part of a standing request's page, and what its charts show (the page's `live-shown` store)."""
    live = snap.get("live") or {}
    revisions = forecasts.get("revisions") or {}
    names = sorted(set(revisions) | set(snap["results"]))
    sections, shown = [], {}
    for name in names:
        kept = revisions.get(name) or []
        fig, errors, state = live_figure(name, snap["results"].get(name), kept)
        shown[name] = state.as_doc()
        sections.append(html.Section([
            html.H3(name, className="series-name"),
            html.P(revision_text(kept[-1] if kept else None), id={"type": "live-revision", "series": name},
                   className="live-revision"),
            dcc.Graph(id={"type": "live-chart", "series": name}, figure=fig, config={"displaylogo": False},
                      className="live-chart"),
            dcc.Graph(id={"type": "live-error", "series": name}, figure=errors, config={"displaylogo": False},
                      className="live-error-chart"),
        ], className="series-card live-card"))
    head = html.Div([
        html.Span(LIVE_WORDS.get(live.get("state") or "", "Live"), id="live-state",
                  className=f"pill pill-live-{live.get('state')}"),
        html.Span("updates as points arrive on the source topic", className="muted"),
        html.Button("Stop", id="live-stop", className="secondary", disabled=live.get("state") == "stopped"),
        html.Span(id="live-stop-message"),
    ], className="live-head")
    return html.Div([head, *sections], id="live-panel"), {"rid": snap["request_id"], "series": shown}
