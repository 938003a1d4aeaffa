"""A finished request as a download: JSON (best model, forecast, comparison per series) or one CSV table."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

CSV_COLUMNS = ("series", "timestamp", "kind", "value", "lower_80", "upper_80", "lower_95", "upper_95", "model")


def results_json(snapshot: dict[str, Any]) -> dict[str, Any]:
    keep = ("model", "transformation", "window", "main_accuracy_estimator", "metrics", "forecast", "comparison",
            "history_timestamps", "history_values", "history_points", "series_ref", "units_done", "units_total",
            "complete", "historical_predictions")
    return {"request_id": snapshot["request_id"], "title": snapshot["title"], "status": snapshot["status"],
            "results": {s: {**{k: r.get(k) for k in keep}, "additional_regressors": additional_regressors(r)}
                        for s, r in sorted(snapshot["results"].items())},
            "failures": snapshot["failures"]}


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
