"""A finished request as a download: JSON (best model, forecast, comparison per series) or one CSV table."""

from __future__ import annotations

import csv
import io
from typing import Any

from timex_stream.render import series_entry

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
