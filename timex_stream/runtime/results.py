"""A finished request as a download: JSON (best model, forecast, comparison per series) or one CSV table."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

COMPARISON_KEYS = ("model", "transformation", "window", "metrics", "fit_seconds", "error", "best_of_model")
CSV_COLUMNS = ("series", "timestamp", "kind", "value", "lower_80", "upper_80", "lower_95", "upper_95", "model")


def results_json(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The results document of a request (the gateway's `results.json`, the CLI's `results`/`watch` with JSON
    output): per answered series the BestModel's fields and its `series_entry` ("history", "comparison", its
    failures, ...), with the request's status, progress, visualization parameters, every failure and the
    config's warnings. `snapshot`: a `RequestView.to_dict()` (the gateway's, with the index's title)."""
    keep = ("model", "transformation", "window", "main_accuracy_estimator", "metrics", "forecast", "comparison",
            "history_timestamps", "history_values", "history_points", "series_ref", "units_done", "units_total",
            "complete", "historical_predictions")
    failures = snapshot["failures"]
    return {"request_id": snapshot["request_id"], "title": snapshot["title"], "replay_of": snapshot.get("replay_of"),
            "status": snapshot["status"], "units_done": snapshot.get("units_done"),
            "units_total": snapshot.get("units_total"), "visualization": snapshot.get("visualization"),
            "series": snapshot.get("series"),
            "results": {s: {**{k: r.get(k) for k in keep},
                            **series_entry(r, [f for f in failures if f.get("series") == s])}
                        for s, r in sorted(snapshot["results"].items())},
            "failures": failures, "warnings": snapshot.get("warnings") or []}


def results_csv(snapshot: dict[str, Any]) -> str:
    """One row per history point ("history") and forecast step ("forecast", with its intervals)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for series, best in sorted(snapshot["results"].items()):
        for ts, value in zip(best["history_timestamps"], best["history_values"], strict=False):
            writer.writerow((series, ts, "history", value, "", "", "", "", ""))
        fc = best.get("forecast")
        if not fc:
            continue
        bands = [fc.get(b) or [None] * len(fc["yhat"]) for b in ("lower_80", "upper_80", "lower_95", "upper_95")]
        for i, (ts, yhat) in enumerate(zip(fc["timestamps"], fc["yhat"], strict=False)):
            writer.writerow((series, ts, "forecast", yhat, *("" if b[i] is None else b[i] for b in bands),
                             best["model"]))
    return out.getvalue()


def series_entry(best: dict[str, Any], failures: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """One series of the answer from its BestModel record (empty: not answered yet): the best model, its
    transformation, test metrics, forecast with intervals, the history the answer carries (its last
    HISTORY_TAIL_POINTS: plenty for charts; the whole series stays where `series_ref` points), every scored
    unit ("comparison") and the failures of that series. The webapp draws its charts from this."""
    history = {"timestamps": best.get("history_timestamps") or [], "values": best.get("history_values") or []}
    return {
        "model": best.get("model"), "transformation": best.get("transformation"), "window": best.get("window"),
        "main_accuracy_estimator": best.get("main_accuracy_estimator"), "metrics": best.get("metrics") or {},
        "forecast": best.get("forecast"), "complete": best.get("complete"),
        "history": history if best else None,
        "comparison": [{k: row.get(k) for k in COMPARISON_KEYS} for row in best["comparison"]]
        if best.get("comparison") is not None else None,
        "additional_regressors": additional_regressors(best),
        "historical_predictions": best.get("historical_predictions"),
        **{k: best.get(k) for k in ("xcorr", "univariate", "multivariate", "kept")},
        "failures": [_failure(f) for f in failures],
    }


def additional_regressors(best: dict[str, Any]) -> list[str] | None:
    """The additional regressors the best model's forecast uses, of a BestModel record: [] when the series
    had some but its best model is better without them (or takes none), None when it had none."""
    given = [r["name"] for r in (best.get("series_ref") or {}).get("regressors") or ()]
    if not given:
        return None
    row = next((r for r in best.get("comparison") or () if r.get("best_of_model") and r["model"] == best.get("model")),
               None)
    used = json.loads((row or {}).get("params", {}).get("regressors") or "[]")
    return [name for name in used if name in given]


def _failure(f: dict[str, Any]) -> dict[str, Any]:
    return {k: f.get(k) for k in ("stage", "series", "model", "message", "fatal")}
