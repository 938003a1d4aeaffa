"""How one request looks: progress per series, then per series a forecast chart and the model comparison,
and failures in plain words. Pure functions of the gateway's JSON."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import dcc, html

STAGE_WORDS = {"config": "The config", "download": "Downloading the data", "data": "The data",
               "model": "A model", "deadline": "The time limit", "decode": "The submitted record",
               "internal": "An internal step", "xcorr": "The cross-correlation"}
STATUS_WORDS = {"submitted": "Submitted, waiting for the ingestion", "accepted": "Accepted, preparing the data",
                "running": "Forecasting", "done": "Done", "failed": "Failed"}


def status_line(snap: dict[str, Any]) -> html.Div:
    status = snap["status"]
    bits: list[Any] = [html.Span(STATUS_WORDS.get(status, status), className=f"pill pill-{status}"),
                       html.Strong(snap.get("title") or "untitled"), html.Code(snap["request_id"])]
    if snap.get("replay_of"):
        bits.append(html.Span(f"re-forecast of {snap['replay_of']}", className="muted"))
    return html.Div(bits, className="status-line", id="status-line")


def progress_table(snap: dict[str, Any]) -> html.Div:
    series = snap.get("series") or sorted(snap["progress"])
    total = snap["units_total"]
    head = html.P(f"{snap['units_done']} of {total or '?'} units done", className="units")
    if not series:
        return html.Div([head, html.P("Waiting for the data to be prepared…", className="muted")])
    rows = []
    for name in series:
        prog = snap["progress"].get(name, {})
        best = snap["results"].get(name)
        done = best["units_done"] if best else prog.get("units_done", 0)
        of = best["units_total"] if best else prog.get("units_total", 0)
        current = (best or {}).get("model") or prog.get("current_best") or "—"
        rows.append(html.Tr([html.Td(name), html.Td(html.Progress(value=str(done), max=str(max(of, 1)))),
                             html.Td(f"{done} / {of or '?'}"), html.Td(current),
                             html.Td("✓" if best else "", className="ok")]))
    return html.Div([head, html.Div(html.Table([
        html.Thead(html.Tr([html.Th(h) for h in ("Series", "Progress", "Units", "Current best", "")])),
        html.Tbody(rows)], className="progress-table"), className="table-scroll")])


def forecast_figure(name: str, best: dict[str, Any]) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=best["history_timestamps"], y=best["history_values"], name="history",
                             mode="lines", line={"color": "#4a5568"}))
    fc = best.get("forecast")
    if fc:
        x = fc["timestamps"]
        for level, color in (("95", "rgba(49,130,206,0.15)"), ("80", "rgba(49,130,206,0.30)")):
            lower, upper = fc.get(f"lower_{level}"), fc.get(f"upper_{level}")
            if lower and upper:
                fig.add_trace(go.Scatter(x=x + x[::-1], y=upper + lower[::-1], fill="toself", fillcolor=color,
                                         mode="lines", line={"width": 0}, name=f"{level} % interval", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=fc["yhat"], name=f"forecast ({best['model']})", mode="lines+markers",
                                 line={"color": "#3182ce", "width": 2}, marker={"size": 4}))
    fig.update_layout(template="plotly_white", height=340, margin={"l": 40, "r": 10, "t": 30, "b": 30},
                      legend={"orientation": "h", "y": -0.15}, title={"text": name, "x": 0.01, "font": {"size": 14}},
                      uirevision=name)
    return fig


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def comparison_table(best: dict[str, Any]) -> html.Table:
    main = best["main_accuracy_estimator"].upper()
    metrics = sorted({m for row in best["comparison"] for m in row["metrics"]}, key=lambda m: (m != main, m))
    rows = sorted(best["comparison"], key=lambda r: (r["error"] is not None, r["metrics"].get(main, float("inf"))))
    body = []
    for row in rows:
        is_best = (row["model"], row["transformation"], row["window"]) == \
            (best["model"], best["transformation"], best["window"])
        cells = [html.Td(("★ " if is_best else "") + row["model"]), html.Td(row["transformation"]),
                 html.Td(row["window"]), *[html.Td(_fmt(row["metrics"].get(m))) for m in metrics],
                 html.Td(_fmt(round(row["fit_seconds"], 3))), html.Td(row["error"] or "", className="error-cell")]
        body.append(html.Tr(cells, className="best" if is_best else None))
    head = ["Model", "Transformation", "Training window", *metrics, "Fit s", "Error"]
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(body)],
                      className="comparison")


def series_card(name: str, best: dict[str, Any]) -> html.Section:
    if not best.get("model"):
        summary: Any = html.P("No model could forecast this series (see the failures).", className="error")
        content: list[Any] = []
    else:
        metric = best["main_accuracy_estimator"].upper()
        summary = html.P([f"Best: {best['model']} ({best['transformation']}, last {best['window']} points), "
                          f"{metric} {_fmt(best['metrics'].get(metric))}",
                          "" if best["complete"] else " — decided at the deadline, some units missing"])
        content = [dcc.Graph(figure=forecast_figure(name, best), config={"displaylogo": False, "responsive": True},
                             className="forecast-chart"),
                   html.Div(comparison_table(best), className="table-scroll")]
    return html.Section([html.H3(name, className="series-name"), summary, *content], className="series-card")


def failure_list(failures: list[dict[str, Any]]) -> html.Div | None:
    if not failures:
        return None
    items = []
    for f in failures:
        where = ", ".join(x for x in (f.get("series") and f"series {f['series']}",
                                      f.get("model") and f"model {f['model']}") if x)
        lead = STAGE_WORDS.get(f["stage"], f["stage"]) + (f" ({where})" if where else "")
        items.append(html.Li([html.Strong(lead + ": "), f["message"],
                              html.Em(" — the request stopped here.") if f.get("fatal") else ""]))
    return html.Div([html.H3("What went wrong"), html.Ul(items)], className="failures", id="failures")


def results_panel(snap: dict[str, Any]) -> list[Any]:
    cards: list[Any] = [series_card(name, snap["results"][name]) for name in sorted(snap["results"])]
    failures = failure_list(snap["failures"])
    return ([failures] if failures else []) + cards


def history_rows(requests_: list[dict[str, Any]]) -> list[Any]:
    if not requests_:
        return [html.P("No requests yet.", className="muted")]
    rows = []
    for r in requests_:
        rid = r["request_id"]
        rows.append(html.Li([
            html.Div([html.Span(STATUS_WORDS.get(r["status"], r["status"]), className=f"pill pill-{r['status']}"),
                      html.Strong(r.get("title") or "untitled")]),
            html.Div([html.Code(rid), html.Span(f" re-forecast of {r['replay_of']}" if r.get("replay_of") else "",
                                                className="muted")]),
            html.Div([html.Button("Open", id={"type": "open", "rid": rid}, className="small"),
                      html.Button("Re-forecast", id={"type": "reforecast", "rid": rid}, className="small",
                                  disabled=not r.get("origin"))]),  # no config on `configs`: nothing to resend
        ], className="history-row"))
    return [html.Ul(rows, className="history")]
