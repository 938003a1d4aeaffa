"""A finished request as a download: JSON (best model, forecast, comparison per series) or one CSV table."""

from __future__ import annotations

import csv
import io
from typing import Any

from timex_stream.render import series_entry

CSV_COLUMNS = ("series", "timestamp", "kind", "value", "lower_80", "upper_80", "lower_95", "upper_95", "model")


def results_json(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Per series the BestModel's fields and the entry the CLI's `results --format json` gives (`series_entry`:
    "history", "comparison", ...), with the request's visualization parameters."""
    keep = ("model", "transformation", "window", "main_accuracy_estimator", "metrics", "forecast", "comparison",
            "history_timestamps", "history_values", "history_points", "series_ref", "units_done", "units_total",
            "complete", "historical_predictions")
    failures = snapshot["failures"]
    return {"request_id": snapshot["request_id"], "title": snapshot["title"], "status": snapshot["status"],
            "visualization": snapshot.get("visualization"),
            "results": {s: {**{k: r.get(k) for k in keep},
                            **series_entry(r, [f for f in failures if f.get("series") == s])}
                        for s, r in sorted(snapshot["results"].items())},
            "failures": failures}


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
