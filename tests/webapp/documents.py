"""Hand-made results-document entries of the shape contract16 §2 gives (what `history` and `xcorr` produce),
for the chart tests: two series, B is A three steps later, so their cross-correlation peaks at lag 3."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

LAG = 3
MAX_LAGS = 6
N = 48


def _stamps(index: pd.DatetimeIndex) -> list[str]:
    return [t.isoformat() for t in index]


def series_values() -> dict[str, np.ndarray]:
    t = np.arange(N + LAG)
    a = 10 + 3 * np.sin(2 * math.pi * t / 12) + 0.05 * t
    return {"a": a[LAG:], "b": a[:-LAG]}  # b[i] = a[i - LAG]: b follows a


def xcorr_lines(target: np.ndarray, other: np.ndarray) -> list[float]:
    """Pearson correlation of target[t] with other[t - lag], lag = -MAX_LAGS..MAX_LAGS."""
    out = []
    for lag in range(-MAX_LAGS, MAX_LAGS + 1):
        x, y = (target[lag:], other[:len(other) - lag]) if lag >= 0 else (target[:lag], other[-lag:])
        out.append(float(np.corrcoef(x, y)[0, 1]))
    return out


def forecast(start: pd.Timestamp, h: int, level: float) -> dict[str, Any]:
    stamps = _stamps(pd.date_range(start, periods=h, freq="MS"))
    yhat = [level + 0.1 * i for i in range(h)]
    return {"timestamps": stamps, "yhat": yhat, "lower_80": [v - 1 for v in yhat], "upper_80": [v + 1 for v in yhat],
            "lower_95": [v - 2 for v in yhat], "upper_95": [v + 2 for v in yhat]}


def entry(name: str, *, xcorr: bool = True, historical: bool = True) -> dict[str, Any]:
    values = series_values()
    index = pd.date_range("2020-01-01", periods=N, freq="MS")
    y = values[name]
    future = forecast(index[-1] + pd.offsets.MonthBegin(), 6, float(y[-1]))
    doc: dict[str, Any] = {
        "model": "arima", "transformation": "none", "window": 36, "main_accuracy_estimator": "mae",
        "metrics": {"MAE": 0.4, "MSE": 0.3, "RMSE": 0.55, "AM": 0.01}, "forecast": future, "complete": True,
        "history": {"timestamps": _stamps(index), "values": [float(v) for v in y]},
        "comparison": [{"model": m, "transformation": tr, "window": w,
                        "metrics": {"MAE": base + 1 / w, "MSE": (base + 1 / w) ** 2, "AM": 0.0},
                        "fit_seconds": 0.01, "error": None, "best_of_model": w == 36}
                       for m, base in (("arima", 0.3), ("naive", 0.9)) for tr in ("none", "log")
                       for w in (12, 24, 36)]
        + [{"model": "naive", "transformation": "log", "window": 6, "metrics": {}, "fit_seconds": 0.0,
            "error": "too few points", "best_of_model": False}],
        "failures": [],
    }
    if xcorr:
        other = "b" if name == "a" else "a"
        lines = xcorr_lines(y, values[other])
        doc["xcorr"] = {"max_lags": MAX_LAGS, "threshold": 0.5,
                        "modes": {"pearson": {other: lines}, "kendall": {other: [v * 0.9 for v in lines]}},
                        "regressors": [other]}
        doc["univariate"] = {"model": "arima", "transformation": "none", "metrics": {"MAE": 0.5},
                             "forecast": forecast(index[-1] + pd.offsets.MonthBegin(), 6, float(y[-1]) + 1)}
        doc["multivariate"] = {"model": "arima", "transformation": "none", "metrics": {"MAE": 0.4},
                               "forecast": future, "regressors": [other]}
        doc["kept"] = "multivariate"
    if historical:
        at = N - 10
        doc["historical_predictions"] = {
            "initial_index": at, "delta": 1, "best_model": "arima",
            "models": {m: {"timestamps": _stamps(index[at:]), "actual": [float(v) for v in y[at:]],
                           "forecast": [float(v) + shift for v in y[at:]], "metrics": {"mae": abs(shift)}}
                       for m, shift in (("arima", 0.2), ("naive", -0.7))}}
    return doc


def document(language: str = "en", threshold: float = 0.5, **keys: bool) -> dict[str, Any]:
    """The results document (`timex_stream.runtime.results.results_json`'s shape, the gateway's results.json and the
    CLI's JSON) of a two-series request."""
    return {"request_id": "hand-made", "status": "done", "title": "two series", "replay_of": None,
            "units_done": 26, "units_total": 26,
            "visualization": {"language": language, "xcorr_graph_threshold": threshold}, "series": ["a", "b"],
            "results": {name: entry(name, **keys) for name in ("a", "b")}, "failures": [], "warnings": []}
