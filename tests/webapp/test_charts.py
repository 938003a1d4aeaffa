"""The chart builder (webapp.charts) and the series cards (webapp.views) on hand-made results documents of
the contract's shape: every chart for two series with xcorr and historical predictions, Italian labels,
the graph's threshold, and nothing (no error) where a key is missing."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from dash import dcc

from tests.webapp.documents import LAG, MAX_LAGS, N, document, entry
from webapp.charts import ITALIAN, Chart, autocorrelation, series_charts, translator, xcorr_edges, xcorr_graph_figure
from webapp.views import results_panel, series_card

EVERY_KIND = ["line", "histogram", "autocorrelation", "box-plot", "aggregate-box-plot", "xcorr", "xcorr-graph",
              "xcorr-graph", "forecast",
              "multivariate", "windows", "historical", "historical"]


def texts(fig: go.Figure) -> set[str]:
    """Every title, axis title, subplot title, annotation and trace name of a figure."""
    layout = fig.to_plotly_json()["layout"]
    found = {t.get("name") for t in fig.to_plotly_json()["data"]}
    found |= {a.get("text") for a in layout.get("annotations", [])}
    found.add((layout.get("title") or {}).get("text"))
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")):
            found.add((axis.get("title") or {}).get("text"))
    return {t for t in found if t}


def charts_of(doc: dict[str, Any], name: str) -> list[Chart]:
    return series_charts(name, doc["results"][name], doc["visualization"])


@pytest.fixture(scope="module")
def english() -> dict[str, list[Chart]]:
    """The charts of both series of the English document (plotly figures take ~1 s a series to build)."""
    doc = document()
    return {name: charts_of(doc, name) for name in doc["results"]}


def test_every_chart_for_two_series_with_xcorr_and_historical_predictions(english: dict[str, list[Chart]]) -> None:
    doc = document()
    for name in ("a", "b"):
        charts = english[name]
        assert [c.kind for c in charts] == EVERY_KIND
        by_kind = {c.kind: c.figure for c in charts}
        history = doc["results"][name]["history"]
        assert list(by_kind["line"].data[0].y) == history["values"]
        assert list(by_kind["histogram"].data[0].x) == history["values"]
        assert {"Line plot", "Histogram", "Count", "Autocorrelation plot", "Lags"} <= \
            texts(by_kind["line"]) | texts(by_kind["histogram"]) | texts(by_kind["autocorrelation"])
        xcorr = by_kind["xcorr"]
        assert {"pearson", "kendall", "Cross-correlation using different algorithms"} <= texts(xcorr)
        assert list(xcorr.data[0].x) == list(range(-MAX_LAGS, MAX_LAGS + 1))
        forecast = by_kind["forecast"]
        assert {"history", "80 % interval", "95 % interval", "forecast (arima)"} <= texts(forecast)
        windows = by_kind["windows"]
        assert {t.name for t in windows.data} == {"arima / none", "arima / log", "naive / none", "naive / log"}
        assert {"Performances with different training windows", "MAE", "MSE", "AM"} <= texts(windows)
        assert all(list(t.x) == [12, 24, 36] for t in windows.data)  # the failed unit (window 6) is not drawn
        historical = [c.figure for c in charts if c.kind == "historical"]
        assert [f.layout.title.text.split(" (")[0] for f in historical] == [
            "Historical prediction: arima", "Historical prediction: naive"]
        arima = next(f for f in historical if any(t.startswith("Historical prediction: arima") for t in texts(f)))
        error = next(t for t in arima.data if t.name == "Error series")
        assert list(error.y) == pytest.approx([-0.2] * 10)  # actual - forecast, as TIMEX's error series
        assert "future yhat" in texts(arima)  # the best model continues into the future forecast
        naive = next(f for f in historical if f is not arima)
        assert "future yhat" not in texts(naive)
        assert any("multivariate (arima; regressors: " in t and t.endswith("kept") for t in
                   texts(by_kind["multivariate"]))
        json.dumps(doc)  # the document is plain JSON, as the CLI prints it


def test_graph_links_the_series_at_the_lag_of_their_peak(english: dict[str, list[Chart]]) -> None:
    doc = document(threshold=0.5)
    lines_a = doc["results"]["a"]["xcorr"]["modes"]["pearson"]
    lines_b = doc["results"]["b"]["xcorr"]["modes"]["pearson"]
    [(other, lag, corr)] = xcorr_edges(lines_a, MAX_LAGS, 0.5)
    assert (other, lag) == ("b", -LAG) and corr > 0.99  # a is b's past: b's future matches a
    assert xcorr_edges(lines_b, MAX_LAGS, 0.5)[0][:2] == ("a", LAG)
    graph = next(c.figure for c in english["a"] if c.kind == "xcorr-graph")
    assert set(graph.data[0].text) == {"a", "b"}
    assert any(t.startswith(f"Lag: {-LAG}, corr: ") for t in texts(graph))
    # Kendall's line is 0.9 × Pearson's here: at 0.95 only the Pearson graph keeps the edge.
    modes = doc["results"]["a"]["xcorr"]["modes"]
    pearson, kendall = (xcorr_graph_figure("a", mode, modes[mode], MAX_LAGS, 0.95, translator("en"))
                        for mode in ("pearson", "kendall"))
    assert any(t.startswith("Lag: ") for t in texts(pearson)) and "pearson" in pearson.layout.title.text
    assert set(kendall.data[0].text) == {"a", "b"} and not any(t.startswith("Lag: ") for t in texts(kendall))


def test_italian_labels_when_the_config_says_it() -> None:
    doc = document(language="it")
    card = series_card("a", doc["results"]["a"], doc["visualization"])
    figures = [go.Figure(g.figure) for g in card.children if isinstance(g, dcc.Graph)]
    assert len(figures) == len(EVERY_KIND)
    labels = set().union(*(texts(f) for f in figures))
    assert {"Grafico", "Istogramma", "Conteggio", "Grafico dell'autocorrelazione", "Ritardi", "Correlazione",
            "Cross-correlazione usando vari algoritmi", "storico", "previsione (arima)", "80 % intervallo",
            "Performances con differenti finestre di allenamento", "Finestra di allenamento (punti)",
            "Dati reali", "Previsione storica", "Errore", "Previsione futura"} <= labels
    english = set(ITALIAN) - set(ITALIAN.values())
    assert not labels & english, labels & english  # nothing left in English
    page = json.dumps(card.to_plotly_json(), default=lambda o: o.to_plotly_json())
    for heading in ("Visualizzazione dei dati", "Cross-correlazione", "Risultati dell'allenamento del modello",
                    "Predizione", "Modello", "Trasformazione", "Migliore: arima"):
        assert heading in page


DRAWN_FROM = {"xcorr": {"xcorr", "xcorr-graph"}, "historical_predictions": {"historical"},
              "history": {"line", "histogram", "autocorrelation", "box-plot", "aggregate-box-plot"},
              "comparison": {"windows"},
              "forecast": {"forecast"}, "univariate": {"multivariate"}, "multivariate": {"multivariate"}}


@pytest.mark.parametrize("missing, how", [
    (("xcorr", "univariate", "multivariate", "kept", "historical_predictions"), "absent"),
    (("history", "comparison", "forecast", "multivariate"), "null"),
    (("xcorr", "historical_predictions", "history", "comparison", "forecast", "univariate"), "absent"),
])
def test_missing_keys_draw_nothing_and_break_nothing(missing: tuple[str, ...], how: str) -> None:
    part = entry("a")
    for key in missing:
        if how == "absent":
            part.pop(key)
        else:
            part[key] = None
    card = series_card("a", part, None)  # the page renders it: no error
    graphs = [g for g in card.children if isinstance(g, dcc.Graph)]
    kinds = [g.className.split()[1].removeprefix("chart-") for g in graphs]
    assert kinds == [k for k in EVERY_KIND if not any(k in DRAWN_FROM.get(m, set()) for m in missing)]


def test_an_answer_without_a_model_and_an_old_snapshot_still_render() -> None:
    assert series_charts("x", {}, None) == []
    assert series_charts("x", {"history": {"timestamps": [], "values": []}, "comparison": []}, {}) == []
    # The webapp's path: a gateway snapshot of BestModel records, without any of the new keys.
    best = {"model": "naive", "transformation": "none", "window": 12, "main_accuracy_estimator": "mae",
            "metrics": {"MAE": 1.0}, "forecast": None, "complete": True, "comparison": [],
            "history_timestamps": ["2020-01-01T00:00:00", "2020-02-01T00:00:00"], "history_values": [1.0, None]}
    panel = results_panel({"results": {"x": best}, "failures": []})
    assert "Line plot" in json.dumps(panel[0].to_plotly_json(), default=lambda o: o.to_plotly_json())


def test_autocorrelation_is_pandas_formula() -> None:
    values = np.sin(np.arange(N) / 3.0) + np.arange(N) * 0.01
    pandas_r = [((values[: N - h] - values.mean()) * (values[h:] - values.mean())).sum() / N
                / (((values - values.mean()) ** 2).sum() / N) for h in range(1, N + 1)]
    assert autocorrelation(values) == pytest.approx(pandas_r)
    assert list(autocorrelation([2.0, 2.0, 2.0])) == [0.0, 0.0, 0.0]  # a constant series: no correlation, no NaN


def test_a_card_is_built_once_per_answer() -> None:
    """The panel is redrawn each time one more series is answered: the series already drawn are not rebuilt."""
    best = {"model": "naive", "transformation": "none", "window": 12, "main_accuracy_estimator": "mae",
            "metrics": {"MAE": 1.0}, "forecast": None, "complete": True, "comparison": [], "decided_at": 1,
            "history_timestamps": ["2020-01-01T00:00:00"], "history_values": [1.0]}
    snap = {"request_id": "cached", "results": {"x": best}, "failures": []}
    first = results_panel(snap)[0]
    assert results_panel({**snap, "results": {"x": best, "y": best}})[0] is first
    assert results_panel({**snap, "results": {"x": {**best, "decided_at": 2}}})[0] is not first  # a new answer
    assert results_panel({**snap, "visualization": {"language": "it"}})[0] is not first


def test_box_plots_group_the_history_as_timex_s_and_show_the_configured_grouping_first() -> None:
    stamps = [t.isoformat() for t in pd.date_range("2020-01-01", periods=24, freq="MS")]
    values = [float(v) for v in range(24)]
    part = {"history": {"timestamps": stamps, "values": values}}
    vis = {"language": "it", "box_plot_frequency": "3M", "aggregate_box_plot_frequency": "month"}
    by_kind = {c.kind: c.figure for c in series_charts("a", part, vis)}
    box, aggregate = by_kind["box-plot"], by_kind["aggregate-box-plot"]
    shown = [t for t in box.data if t.visible is True]
    # Three-month periods labelled by their ends, the bins TIMEX's pandas Grouper(freq="3M") makes (checked in the
    # reference venv: January alone, then February to April, ...).
    assert [t.name for t in shown][:3] == ["2020-01-31", "2020-04-30", "2020-07-31"] and len(shown) == 9
    assert [list(t.y) for t in shown[:2]] == [[0.0], [1.0, 2.0, 3.0]] and {t.legendgroup for t in shown} == {"3M"}
    menu = box.layout.updatemenus[0]
    assert [b.label for b in menu.buttons] == ["1W", "2W", "1M", "3M", "4M", "6M", "1Y"] and menu.active == 3
    months = [t for t in aggregate.data if t.visible is True]
    assert [t.name for t in months][:2] == ["January", "February"] and len(months) == 12
    assert list(months[0].y) == [0.0, 12.0]  # January 2020 and January 2021
    assert aggregate.layout.updatemenus[0].buttons[4].label == "Mese"  # TIMEX's Italian
    assert {"Diagramma a scatola", "Diagramma a scatola aggregato"} <= texts(box) | texts(aggregate)
    # Without the keys, TIMEX's defaults: weeks, weekdays.
    plain = {c.kind: c.figure for c in series_charts("a", part, {})}
    assert {t.legendgroup for t in plain["box-plot"].data if t.visible is True} == {"1W"}
    assert {t.legendgroup for t in plain["aggregate-box-plot"].data if t.visible is True} == {"weekday"}
