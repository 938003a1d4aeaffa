"""How the CLI shows requests: one JSON document, plain-text tables and a progress bar (the JSON document and
the CSV come from `timex_stream.results`, so the CLI and the HTTP downloads give the same documents)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from tqdm import tqdm

from timex_stream.history import format_ms
from timex_stream.plain import plain
from timex_stream.request_view import RequestView


def dumps(value: Any) -> str:
    return json.dumps(plain(value), indent=2, allow_nan=False)


def result_document(view: RequestView) -> dict[str, Any]:
    """The results document the CLI prints: the gateway's `results.json` of the same request, as plain JSON
    data (`timex_stream.results.results_json`)."""
    from timex_stream.results import results_json  # it builds its entries with series_entry, below

    return plain(results_json(view.to_dict()))


def series_entries(view: RequestView) -> dict[str, dict[str, Any]]:
    """`series_entry` of every series the request has (answered or not, or named by a failure), by name."""
    names = sorted(set(view.series_names or []) | set(view.results)
                   | {f["series"] for f in view.failures if f.get("series")})
    return {name: series_entry(view.results.get(name) or {}, [f for f in view.failures if f.get("series") == name])
            for name in names}


COMPARISON_KEYS = ("model", "transformation", "window", "metrics", "fit_seconds", "error", "best_of_model")


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


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Plain-text columns, left-aligned, two spaces apart."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4g}"


def results_table(view: RequestView) -> str:
    head = f"request {view.request_id}: {view.status}" + (f" ({view.title})" if view.title else "")
    if view.replay_of:
        head += f", replay of {view.replay_of}"
    rows = []
    for name, s in plain(series_entries(view)).items():
        estimator = (s["main_accuracy_estimator"] or "").upper()
        metric = s["metrics"].get(estimator) if estimator else None
        fc = s["forecast"] or {}
        stamps = fc.get("timestamps") or []
        horizon = f"{len(stamps)} points {stamps[0][:10]}..{stamps[-1][:10]}" if stamps else "-"
        note = "; ".join(f["message"] for f in s["failures"]) if not s["model"] else ""
        rows.append([name, s["model"] or "failed", s["transformation"],
                     f"{estimator} {number(metric)}" if estimator else None, horizon, note])
    lines = [head, table(["series", "best model", "transformation", "test error", "forecast", "note"], rows)]
    lines += [f"failure ({f['stage']}): {f['message']}" for f in view.failures if not f.get("series")]
    lines += [f"warning: {w}" for w in view.warnings]
    return "\n".join(lines)


def requests_table(views: Iterable[RequestView]) -> str:
    rows = [[v.request_id, format_ms(v.first_at), v.status, len(v.series_names or []) or None, v.replay_of,
             v.title] for v in views]
    return table(["request", "accepted (UTC)", "status", "series", "replay of", "title"], rows)


class ProgressBar:
    """A tqdm bar on stderr fed with every update of a followed request (`on_update` of `follow`)."""

    def __init__(self, request_id: str) -> None:
        self.bar = tqdm(total=None, desc=request_id, unit="unit", file=sys.stderr, dynamic_ncols=True,
                        mininterval=0.2)

    def update(self, view: RequestView) -> None:
        if view.units_total and self.bar.total != view.units_total:
            self.bar.total = view.units_total
        self.bar.n = view.units_done
        self.bar.set_postfix_str(view.status, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
