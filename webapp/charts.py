"""The charts of one series, as TIMEX 1.2.3's app draws them (timexseries/data_visualization/functions.py):
the data, a histogram, the autocorrelation, the box plot by period and the aggregate box plot (by weekday, month,
... : `visualization_parameters.box_plot_frequency` and `aggregate_box_plot_frequency` pick the one shown first),
the cross-correlation and the graph of the series linked above
`xcorr_graph_threshold`, the forecast with its intervals, the error by training window per model and
transformation, univariate vs multivariate, and the historical predictions against what happened.

Pure: one series' entry of the results document (`timex_stream.tools.render.series_entry`) → plotly figures, no
Dash, so the tests build them from hand-made documents. A key that is absent or null draws nothing."""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# TIMEX's English texts (its msgids) and their Italian (its locales/it messages.po); the texts TIMEX has no
# chart for (forecast bands, univariate/multivariate, windows as points) are translated here alike.
ITALIAN: dict[str, str] = {
    " analysis": " analisi",
    "Data visualization": "Visualizzazione dei dati",
    "Cross-correlation": "Cross-correlazione",
    "Negative lags (left part) show the correlation between this scenario and the future of the others.":
        "I ritardi negativi (parte sinistra) mostrano la correlazione tra questo scenario e il futuro degli altri.",
    "Meanwhile, positive lags (right part) shows the correlation between this scenario and the past of the "
    "others.": "Invece, i ritardi positivi (parte destra) mostrano la correlazione tra questo scenario e il "
               "passato degli altri.",
    "The peaks found using each cross-correlation modality are shown in the graphs:":
        "I picchi raggiunti usando ciascuna modalità di cross-correlazione sono mostrati nel/nei grafo/grafi:",
    "Training & Validation results": "Risultati dell'allenamento del modello",
    "Prediction": "Predizione",
    "For every model the best predictions for each past date are plotted.":
        "Per ciascun modello vengono mostrate le migliori predizioni ottenibili in ciascuna data passata.",
    "Line plot": "Grafico",
    "Histogram": "Istogramma",
    "Count": "Conteggio",
    "Box plot": "Diagramma a scatola",
    "Aggregate box plot": "Diagramma a scatola aggregato",
    "The index refer to the end of the period.": "L'indice fa riferimento alla fine del periodo considerato.",
    "minute": "Minuto",
    "hour": "Ora",
    "weekday": "Giorno della settimana",
    "day": "Giorno del mese",
    "month": "Mese",
    "year": "Anno",
    "autocorrelation": "Autocorrelazione",
    "Autocorrelation plot": "Grafico dell'autocorrelazione",
    "Lags": "Ritardi",
    "Autocorrelation": "Autocorrelazione",
    "Cross-correlation using different algorithms": "Cross-correlazione usando vari algoritmi",
    "Correlation": "Correlazione",
    "Lag: ": "Ritardi: ",
    "Cross-correlation graph": "Grafo della cross-correlazione",
    "Time": "Tempo",
    "history": "storico",
    "forecast": "previsione",
    "interval": "intervallo",
    "Forecast with intervals": "Previsione con intervalli",
    "Performances with different training windows": "Performances con differenti finestre di allenamento",
    "Training window (points)": "Finestra di allenamento (punti)",
    "Univariate and multivariate forecast": "Previsione univariata e multivariata",
    "univariate": "univariata",
    "multivariate": "multivariata",
    "kept": "scelta",
    "regressors": "regressori",
    "real data": "Dati reali",
    "historical prediction": "Previsione storica",
    "future yhat": "Previsione futura",
    "Error series": "Errore",
    "Historical prediction": "Previsione storica",
    "Model": "Modello",
    "Transformation": "Trasformazione",
    "Training window": "Finestra di allenamento",
    "Error": "Errore",
    "Best": "Migliore",
    "last": "ultimi",
    "points": "punti",
}
LANGUAGES: dict[str, dict[str, str]] = {"en": {}, "it": ITALIAN}

Translate = Callable[[str], str]


def translator(language: str | None) -> Translate:
    """TIMEX falls back to English for a language it has no texts for; so does this."""
    texts = LANGUAGES.get(language or "en", {})
    return lambda text: texts.get(text, text)


@dataclass(frozen=True)
class Chart:
    section: str  # "data" | "xcorr" | "training" | "historical": the heading it is shown under
    kind: str  # what it is, for the page (CSS class) and the tests
    figure: go.Figure


COLORS = ("#3182ce", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#4a5568")
COLORWAY = list(COLORS)
# plotly_white's look in a few keys: the full template is copied and validated into every figure (~0.1 s each).
_AXIS = {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "linecolor": "#ebf0f8", "automargin": True}
TEMPLATE = go.layout.Template(layout={"plot_bgcolor": "white", "paper_bgcolor": "white", "xaxis": _AXIS,
                                      "yaxis": _AXIS, "font": {"color": "#2a3f5f"}, "colorway": COLORWAY})
LAYOUT = {"template": TEMPLATE, "margin": {"l": 50, "r": 10, "t": 40, "b": 30},
          "legend": {"orientation": "h", "y": -0.28}, "title": {"x": 0.01, "font": {"size": 14}}}
Z95, Z99 = 1.959963984540054, 2.5758293035489004  # the bands of TIMEX's autocorrelation plot


def series_charts(name: str, entry: dict[str, Any], visualization: dict[str, Any] | None = None) -> list[Chart]:
    """Every chart the entry has data for, in TIMEX's order."""
    vis = visualization or {}
    _ = translator(vis.get("language"))
    history = entry.get("history") or {}
    stamps, values = history.get("timestamps") or [], _floats(history.get("values") or [])
    charts: list[Chart] = []
    if stamps:
        charts += [Chart("data", "line", line_figure(name, stamps, values, _)),
                   Chart("data", "histogram", histogram_figure(name, values, _)),
                   Chart("data", "autocorrelation", autocorrelation_figure(values, _)),
                   Chart("data", "box-plot", box_plot_figure(stamps, values, vis.get("box_plot_frequency"), _)),
                   Chart("data", "aggregate-box-plot",
                         aggregate_box_plot_figure(stamps, values, vis.get("aggregate_box_plot_frequency"), _))]
    xcorr = entry.get("xcorr")
    if xcorr and xcorr.get("modes"):
        charts.append(Chart("xcorr", "xcorr", xcorr_figure(xcorr, _)))
        threshold = float(vis.get("xcorr_graph_threshold") or 0.0)
        charts += [Chart("xcorr", "xcorr-graph", xcorr_graph_figure(name, mode, lines, xcorr.get("max_lags"),
                                                                    threshold, _))
                   for mode, lines in xcorr["modes"].items()]
    if entry.get("forecast"):
        charts.append(Chart("training", "forecast", forecast_figure(name, entry, _)))
    if entry.get("univariate") and entry.get("multivariate"):
        charts.append(Chart("training", "multivariate", multivariate_figure(stamps, values, entry, _)))
    if scored := [r for r in entry.get("comparison") or [] if r.get("error") is None and r.get("metrics")]:
        charts.append(Chart("training", "windows",
                            windows_figure(scored, (entry.get("main_accuracy_estimator") or "mae").upper(), _)))
    historical = entry.get("historical_predictions") or {}
    for model, hp in sorted((historical.get("models") or {}).items()):
        future = entry.get("forecast") if model == (historical.get("best_model") or entry.get("model")) else None
        charts.append(Chart("historical", "historical", historical_figure(model, stamps, values, hp, future, _)))
    return charts


def _floats(values: Sequence[Any]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def _layout(fig: go.Figure, title: str, height: int = 320, **extra: Any) -> go.Figure:
    fig.update_layout(**LAYOUT, height=height, **extra)
    fig.update_layout(title_text=title)
    return fig


def line_figure(name: str, stamps: list[str], values: list[float], _: Translate) -> go.Figure:
    fig = go.Figure(go.Scatter(x=stamps, y=values, mode="lines+markers", marker={"size": 3}, name=name))
    return _layout(fig, _("Line plot"), xaxis_title=_("Time"), yaxis_title=name)


def histogram_figure(name: str, values: list[float], _: Translate) -> go.Figure:
    fig = go.Figure(go.Histogram(x=[v for v in values if not math.isnan(v)], name=name))
    return _layout(fig, _("Histogram"), xaxis_title=name, yaxis_title=_("Count"))


# TIMEX's periods (its buttons) and pandas' names for them (pandas 2 spells month and year ends ME and YE).
BOX_PERIODS: dict[str, str] = {"1W": "1W", "2W": "2W", "1M": "1ME", "3M": "3ME", "4M": "4ME", "6M": "6ME",
                               "1Y": "1YE"}
GROUPINGS: tuple[str, ...] = ("minute", "hour", "weekday", "day", "month", "year")
MAX_BOXES = 200  # per period: the latest ones (a figure stays a few hundred traces whatever the history's length)


def _buttons(fig: go.Figure, groups: list[str], shown: str) -> None:
    """TIMEX's row of buttons, one per group of traces (`legendgroup`): a click shows that group alone."""
    fig.update_layout(updatemenus=[{
        "type": "buttons", "direction": "right", "yanchor": "bottom", "xanchor": "left", "y": 1.0, "x": 0.0,
        "active": groups.index(shown),
        "buttons": [{"label": g, "method": "update",
                     "args": [{"visible": [t.legendgroup == g for t in fig.data]}]} for g in groups]}])


def _series(stamps: list[str], values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.DatetimeIndex(pd.to_datetime(stamps))).dropna()


def box_plot_figure(stamps: list[str], values: list[float], shown: str | None, _: Translate) -> go.Figure:
    """One box per period (labelled by the period's end, as TIMEX's), for each of TIMEX's periods; `shown` first."""
    shown = shown if shown in BOX_PERIODS else "1W"
    series = _series(stamps, values)
    traces = []
    for label, freq in BOX_PERIODS.items():
        groups = [(end, g) for end, g in series.groupby(pd.Grouper(freq=freq)) if len(g)][-MAX_BOXES:]
        traces += [go.Box(name=end.strftime("%Y-%m-%d"), y=list(g), legendgroup=label, showlegend=False,
                          visible=label == shown) for end, g in groups]
    fig = go.Figure(traces)
    _buttons(fig, list(BOX_PERIODS), shown)
    fig.add_annotation(text=_("The index refer to the end of the period."), xref="paper", yref="paper", x=1.0,
                       y=1.0, yanchor="bottom", showarrow=False)
    return _layout(fig, _("Box plot"), xaxis_title=_("Time"), yaxis_title=_("Count"), xaxis_type="category",
                   showlegend=False)


def aggregate_box_plot_figure(stamps: list[str], values: list[float], shown: str | None, _: Translate
                              ) -> go.Figure:
    """The values grouped by minute, hour, weekday, day (of the month), month or year, as TIMEX's; `shown` first."""
    shown = shown if shown in GROUPINGS else "weekday"
    series = _series(stamps, values)
    names = {"weekday": lambda k: calendar.day_name[k], "month": lambda k: calendar.month_name[k]}
    traces = []
    for grouping in GROUPINGS:
        label = names.get(grouping, str)
        traces += [go.Box(name=label(int(key)), y=list(g), legendgroup=_(grouping), showlegend=False,
                          visible=grouping == shown)
                   for key, g in series.groupby(getattr(series.index, grouping))]
    fig = go.Figure(traces)
    _buttons(fig, [_(g) for g in GROUPINGS], _(shown))
    return _layout(fig, _("Aggregate box plot"), yaxis_title=_("Count"), showlegend=False)


def autocorrelation(values: Sequence[float]) -> np.ndarray:
    """r(h) for h = 1..n, pandas' autocorrelation_plot formula (as TIMEX); missing points count as the mean."""
    data = np.asarray(values, dtype=float)
    n = len(data)
    centred = np.nan_to_num(data - np.nanmean(data)) if n else data
    c0 = float(np.sum(centred ** 2)) / n if n else 0.0
    if c0 == 0.0:
        return np.zeros(n)
    full = np.correlate(centred, centred, mode="full")[n - 1:]  # lag 0..n-1
    return np.append(full[1:], 0.0) / n / c0  # lag 1..n, as TIMEX (r(n) = 0)


def autocorrelation_figure(values: list[float], _: Translate) -> go.Figure:
    n = len(values)
    lags = list(range(1, n + 1))
    fig = go.Figure(go.Scatter(x=lags, y=autocorrelation(values), mode="lines", name=_("autocorrelation")))
    for label, z in (("z99", Z99), ("z95", Z95), ("-z95", -Z95), ("-z99", -Z99)):
        fig.add_trace(go.Scatter(x=[1, n], y=[z / math.sqrt(n)] * 2, mode="lines", name=label,
                                 line={"color": "gray", "width": 1}))
    fig.update_yaxes(tick0=-1.0, dtick=0.25, range=[-1.2, 1.2])
    return _layout(fig, _("Autocorrelation plot"), xaxis_title=_("Lags"), yaxis_title=_("Autocorrelation"))


def _lags(lines: dict[str, list[float]], max_lags: int | None) -> list[int]:
    width = max((len(v) for v in lines.values()), default=1)
    half = max_lags if max_lags is not None and 2 * max_lags + 1 == width else (width - 1) // 2
    return list(range(-half, half + 1))


def xcorr_figure(xcorr: dict[str, Any], _: Translate) -> go.Figure:
    """One subplot per mode (two columns, as TIMEX), one line per other series, lags -L..L."""
    modes = list(xcorr["modes"])
    cols = 1 if len(modes) < 2 else 2
    rows = math.ceil(len(modes) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=modes)
    others = sorted({o for lines in xcorr["modes"].values() for o in lines})
    for i, mode in enumerate(modes):
        lines = xcorr["modes"][mode]
        lags = _lags(lines, xcorr.get("max_lags"))
        for other, corr in sorted(lines.items()):
            fig.add_trace(go.Scatter(x=lags, y=_floats(corr), mode="lines", name=other, legendgroup=other,
                                     showlegend=i == 0, line={"color": COLORS[others.index(other) % len(COLORS)]}),
                          row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(title_text=_("Lags"))
    fig.update_yaxes(tick0=-1.0, dtick=0.25, range=[-1.2, 1.2], title_text=_("Correlation"))
    return _layout(fig, _("Cross-correlation using different algorithms"), height=320 * rows)


def xcorr_edges(lines: dict[str, list[float]], max_lags: int | None, threshold: float
                ) -> list[tuple[str, int, float]]:
    """(other series, lag, correlation) at each series' peak |correlation|, where it is above `threshold`."""
    lags = _lags(lines, max_lags)
    edges = []
    for other, corr in sorted(lines.items()):
        values = np.abs(np.nan_to_num(np.asarray(_floats(corr)), nan=0.0))
        if len(values) == 0:
            continue
        at = int(np.argmax(values))
        if values[at] > threshold:
            edges.append((other, lags[at], float(corr[at])))
    return edges


def xcorr_graph_figure(name: str, mode: str, lines: dict[str, list[float]], max_lags: int | None,
                       threshold: float, _: Translate) -> go.Figure:
    """Nodes: this series in the middle, the others on a circle; an arrow to each one linked above the threshold,
    labelled with the lag and correlation of its peak (TIMEX lays the graph out with networkx; a circle is
    deterministic and needs nothing more)."""
    others = sorted(lines)
    pos = {name: (0.0, 0.0)} | {o: (math.cos(2 * math.pi * i / len(others)), math.sin(2 * math.pi * i / len(others)))
                                for i, o in enumerate(others)}
    fig = go.Figure(go.Scatter(x=[p[0] for p in pos.values()], y=[p[1] for p in pos.values()], text=list(pos),
                               mode="markers+text", textposition="bottom center", hoverinfo="skip",
                               marker={"color": "green", "size": 15}))
    for other, lag, corr in xcorr_edges(lines, max_lags, threshold):
        x, y = pos[other]
        fig.add_annotation(x=x, y=y, ax=0, ay=0, axref="x", ayref="y", xref="x", yref="y", showarrow=True,
                           arrowhead=2, arrowsize=1.0, arrowwidth=2, standoff=10, text="")
        fig.add_annotation(x=x, y=y, text=f"{_('Lag: ')}{lag}, corr: {corr:.3f}", yshift=20, showarrow=False,
                           bgcolor="white")
    fig.update_xaxes(showgrid=False, zeroline=False, showticklabels=False, range=[-1.5, 1.5])
    fig.update_yaxes(showgrid=False, zeroline=False, showticklabels=False, range=[-1.5, 1.5])
    return _layout(fig, f"{_('Cross-correlation graph')}: {mode} (|corr| > {threshold:g})", height=360,
                   showlegend=False)


def _bands(fig: go.Figure, fc: dict[str, Any], _: Translate) -> None:
    x = fc["timestamps"]
    for level, color in (("95", "rgba(49,130,206,0.15)"), ("80", "rgba(49,130,206,0.30)")):
        lower, upper = fc.get(f"lower_{level}"), fc.get(f"upper_{level}")
        if lower and upper:
            fig.add_trace(go.Scatter(x=x + x[::-1], y=_floats(upper) + _floats(lower)[::-1], fill="toself",
                                     fillcolor=color, mode="lines", line={"width": 0}, hoverinfo="skip",
                                     name=f"{level} % {_('interval')}"))


def forecast_figure(name: str, entry: dict[str, Any], _: Translate) -> go.Figure:
    fig = go.Figure()
    history = entry.get("history") or {}
    fig.add_trace(go.Scatter(x=history.get("timestamps") or [], y=_floats(history.get("values") or []),
                             name=_("history"), mode="lines", line={"color": "#4a5568"}))
    fc = entry["forecast"]
    _bands(fig, fc, _)
    fig.add_trace(go.Scatter(x=fc["timestamps"], y=_floats(fc["yhat"]), name=f"{_('forecast')} ({entry['model']})",
                             mode="lines+markers", line={"color": "#3182ce", "width": 2}, marker={"size": 4}))
    return _layout(fig, f"{name}: {_('Forecast with intervals')}", height=340, uirevision=name)


def multivariate_figure(stamps: list[str], values: list[float], entry: dict[str, Any], _: Translate) -> go.Figure:
    fig = go.Figure(go.Scatter(x=stamps, y=values, name=_("history"), mode="lines", line={"color": "#4a5568"}))
    for kind, color in (("univariate", "#dd6b20"), ("multivariate", "#3182ce")):
        part = entry[kind]
        fc = part.get("forecast") or {}
        label = f"{_(kind)} ({part.get('model')}"
        if part.get("regressors"):
            label += f"; {_('regressors')}: {', '.join(part['regressors'])}"
        label += ")" + (f" — {_('kept')}" if entry.get("kept") == kind else "")
        fig.add_trace(go.Scatter(x=fc.get("timestamps") or [], y=_floats(fc.get("yhat") or []), name=label,
                                 mode="lines+markers", marker={"size": 4}, line={"color": color}))
    return _layout(fig, _("Univariate and multivariate forecast"), height=340)


WINDOW_METRICS = ("MAE", "MSE", "AM")  # the rows of TIMEX's performance plot


def windows_figure(rows: list[dict[str, Any]], main: str, _: Translate) -> go.Figure:
    """Per metric a subplot: the test error of each (model, transformation) by training window."""
    metrics = [m for m in dict.fromkeys((main, *WINDOW_METRICS)) if any(m in r["metrics"] for r in rows)]
    fig = make_subplots(rows=len(metrics), cols=1, shared_xaxes=True, vertical_spacing=0.04)
    lines = sorted({(r["model"], r["transformation"]) for r in rows})
    for i, (model, transformation) in enumerate(lines):
        mine = sorted((r for r in rows if (r["model"], r["transformation"]) == (model, transformation)),
                      key=lambda r: r["window"])
        for j, metric in enumerate(metrics):
            fig.add_trace(go.Scatter(x=[r["window"] for r in mine], y=[r["metrics"].get(metric) for r in mine],
                                     mode="lines+markers", name=f"{model} / {transformation}",
                                     legendgroup=f"{model}/{transformation}", showlegend=j == 0,
                                     line={"color": COLORS[i % len(COLORS)]}), row=j + 1, col=1)
    for j, metric in enumerate(metrics):
        fig.update_yaxes(title_text=metric, row=j + 1, col=1)
    fig.update_xaxes(title_text=_("Training window (points)"), row=len(metrics), col=1)
    return _layout(fig, _("Performances with different training windows"), height=200 + 180 * len(metrics))


def historical_figure(model: str, stamps: list[str], values: list[float], hp: dict[str, Any],
                      future: dict[str, Any] | None, _: Translate) -> go.Figure:
    """Above: what happened, the forecast the model made for each past step and (best model) the future forecast;
    below: the error (actual - forecast) over time."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.65, 0.35])
    fig.add_trace(go.Scatter(x=stamps, y=values, mode="markers", marker={"color": "red", "size": 4},
                             name=_("real data")), row=1, col=1)
    when, forecast, actual = hp.get("timestamps") or [], _floats(hp.get("forecast") or []), \
        _floats(hp.get("actual") or [])
    fig.add_trace(go.Scatter(x=when, y=forecast, mode="lines+markers", line={"color": "blue"}, marker={"size": 4},
                             name=_("historical prediction")), row=1, col=1)
    if future:
        fig.add_trace(go.Scatter(x=future["timestamps"], y=_floats(future["yhat"]), mode="lines+markers",
                                 line={"color": "lightgreen"}, name=_("future yhat")), row=1, col=1)
    error = [a - f for a, f in zip(actual, forecast, strict=False)]
    fig.add_trace(go.Scatter(x=when, y=error, mode="lines+markers", line={"color": "black"}, marker={"size": 4},
                             name=_("Error series")), row=2, col=1)
    fig.update_yaxes(title_text=_("Historical prediction"), row=1, col=1)
    fig.update_yaxes(title_text=_("Error series"), row=2, col=1)
    metrics = hp.get("metrics") or {}
    summary = ", ".join(f"{k.upper()} {v:.4g}" for k, v in sorted(metrics.items()) if isinstance(v, (int, float)))
    return _layout(fig, f"{_('Historical prediction')}: {model}" + (f" ({summary})" if summary else ""), height=480)
