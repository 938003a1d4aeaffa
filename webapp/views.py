"""How one request looks: progress per series, then per series TIMEX's charts (webapp.charts) and the model
comparison, and failures in plain words. Pure functions of the gateway's JSON."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from dash import dcc, html

from timex_stream.runtime.results import series_entry
from webapp.charts import Translate, series_charts, translator

STAGE_WORDS = {"config": "The config", "download": "Downloading the data", "data": "The data",
               "model": "A model", "deadline": "The time limit", "decode": "The submitted record",
               "internal": "An internal step", "xcorr": "The cross-correlation"}
STATUS_WORDS = {"submitted": "Submitted, waiting for the ingestion", "accepted": "Accepted, preparing the data",
                "running": "Forecasting", "done": "Done", "failed": "Failed"}


def status_line(snap: dict[str, Any]) -> html.Div:
    status = snap["status"]
    live = (snap.get("live") or {}).get("state")
    word = "Live" if live == "live" and status == "done" else STATUS_WORDS.get(status, status)
    bits: list[Any] = [html.Span(word, className=f"pill pill-{status}"),
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


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def comparison_table(entry: dict[str, Any], _: Translate) -> html.Table:
    main = entry["main_accuracy_estimator"].upper()
    metrics = sorted({m for row in entry["comparison"] for m in row["metrics"]}, key=lambda m: (m != main, m))
    rows = sorted(entry["comparison"], key=lambda r: (r["error"] is not None, r["metrics"].get(main, float("inf"))))
    body = []
    for row in rows:
        is_best = (row["model"], row["transformation"], row["window"]) == \
            (entry["model"], entry["transformation"], entry["window"])
        cells = [html.Td(("★ " if is_best else "") + row["model"]), html.Td(row["transformation"]),
                 html.Td(row["window"]), *[html.Td(_fmt(row["metrics"].get(m))) for m in metrics],
                 html.Td(_fmt(round(row["fit_seconds"], 3))), html.Td(row["error"] or "", className="error-cell")]
        body.append(html.Tr(cells, className="best" if is_best else None))
    head = [_("Model"), _("Transformation"), _("Training window"), *metrics, "Fit s", _("Error")]
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(body)],
                      className="comparison")


GRAPH_CONFIG = {"displaylogo": False, "responsive": True}
SECTIONS = {"data": ["Data visualization"],
            "xcorr": ["Cross-correlation",
                      "Negative lags (left part) show the correlation between this scenario and the future of the "
                      "others.",
                      "Meanwhile, positive lags (right part) shows the correlation between this scenario and the "
                      "past of the others."],
            "training": ["Training & Validation results"],
            "historical": ["Prediction", "For every model the best predictions for each past date are plotted."]}


def chart_sections(name: str, entry: dict[str, Any], visualization: dict[str, Any] | None) -> list[Any]:
    """The charts under TIMEX's headings; the comparison table closes the training section."""
    _ = translator((visualization or {}).get("language"))
    charts = series_charts(name, entry, visualization)
    out: list[Any] = []
    for section, (heading, *notes) in SECTIONS.items():
        mine = [c for c in charts if c.section == section]
        if not mine:
            continue
        out += [html.H4(_(heading), className="chart-section"), *[html.P(_(n), className="muted") for n in notes]]
        for before, chart in zip([None, *mine], mine, strict=False):
            if chart.kind == "xcorr-graph" and before is not None and before.kind != "xcorr-graph":
                out.append(html.P(_("The peaks found using each cross-correlation modality are shown in the graphs:"),
                                  className="muted"))
            css = f"chart chart-{chart.kind}" + (" forecast-chart" if chart.kind == "forecast" else "")
            out.append(dcc.Graph(figure=chart.figure, config=GRAPH_CONFIG, className=css))
        if section == "training" and entry.get("comparison"):
            out.append(html.Div(comparison_table(entry, _), className="table-scroll"))
    return out


def series_card(name: str, entry: dict[str, Any], visualization: dict[str, Any] | None = None) -> html.Section:
    """One series: the best model in a sentence, then every chart its entry of the results document has data
    for (`webapp.charts`), in the config's language."""
    _ = translator((visualization or {}).get("language"))
    if not entry.get("model"):
        summary: Any = html.P("No model could forecast this series (see the failures).", className="error")
        content: list[Any] = []
    else:
        metric = entry["main_accuracy_estimator"].upper()
        summary = html.P([f"{_('Best')}: {entry['model']} ({entry['transformation']}, {_('last')} {entry['window']} "
                          f"{_('points')}), {metric} {_fmt(entry['metrics'].get(metric))}",
                          "" if entry["complete"] else " — decided at the deadline, some units missing"])
        content = chart_sections(name, entry, visualization)
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


# Built cards by (request, series, answer's decided_at, visualization): the panel is redrawn whenever one more
# series is answered, and building a card's plotly figures takes a good part of a second; each card is built once.
CARDS_KEPT = 256
_cards: OrderedDict[str, html.Section] = OrderedDict()
_cards_lock = threading.Lock()


def _card(rid: str | None, name: str, best: dict[str, Any], vis: dict[str, Any] | None) -> html.Section:
    key = json.dumps([rid, name, best.get("decided_at"), vis], sort_keys=True, default=str)
    with _cards_lock:
        if key in _cards:
            _cards.move_to_end(key)
            return _cards[key]
    card = series_card(name, series_entry(best), vis)
    with _cards_lock:
        _cards[key] = card
        while len(_cards) > CARDS_KEPT:
            _cards.popitem(last=False)
    return card


def results_panel(snap: dict[str, Any]) -> list[Any]:
    vis = snap.get("visualization")
    rid = snap.get("request_id")
    cards: list[Any] = [_card(rid, name, snap["results"][name], vis) for name in sorted(snap["results"])]
    failures = failure_list(snap["failures"])
    return ([failures] if failures else []) + cards


def _live_mark(live: dict[str, Any]) -> html.Span:
    """A standing request in the list: live or stopped, and when its forecasts last changed (UTC)."""
    when = live.get("revised_at")
    stamp = datetime.fromtimestamp(when / 1000, UTC).strftime("%H:%M:%S") if when else "no revision yet"
    label = "live" if live.get("state") != "stopped" else "stopped"
    return html.Span(f"{label} · {stamp}", className=f"pill pill-live-{live.get('state')} live-mark",
                     title="a standing request: its forecasts update as points arrive; last update (UTC)")


def history_rows(requests_: list[dict[str, Any]]) -> list[Any]:
    if not requests_:
        return [html.P("No requests yet.", className="muted")]
    rows = []
    for r in requests_:
        rid = r["request_id"]
        live = r.get("live")
        rows.append(html.Li([
            html.Div([html.Span(STATUS_WORDS.get(r["status"], r["status"]), className=f"pill pill-{r['status']}"),
                      *([_live_mark(live)] if live else []), html.Strong(r.get("title") or "untitled")]),
            html.Div([html.Code(rid), html.Span(f" re-forecast of {r['replay_of']}" if r.get("replay_of") else "",
                                                className="muted")]),
            html.Div([html.Button("Open", id={"type": "open", "rid": rid}, className="small"),
                      html.Button("Re-forecast", id={"type": "reforecast", "rid": rid}, className="small",
                                  disabled=not r.get("origin"))]),  # no config on `configs`: nothing to resend
        ], className="history-row"))
    return [html.Ul(rows, className="history")]
