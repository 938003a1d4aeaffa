"""How the CLI shows requests: one JSON document, plain-text tables and a progress bar (the JSON document and
the CSV come from `timex_stream.runtime.results`, so the CLI and the HTTP downloads give the same documents)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from tqdm import tqdm

from timex_stream.runtime.history import format_ms
from timex_stream.runtime.plain import plain
from timex_stream.runtime.request_view import RequestView
from timex_stream.runtime.results import results_json, series_entry


def dumps(value: Any) -> str:
    return json.dumps(plain(value), indent=2, allow_nan=False)


def result_document(view: RequestView) -> dict[str, Any]:
    """The results document the CLI prints: the gateway's `results.json` of the same request, as plain JSON
    data (`timex_stream.runtime.results.results_json`)."""
    return plain(results_json(view.to_dict()))


def series_entries(view: RequestView) -> dict[str, dict[str, Any]]:
    """`series_entry` of every series the request has (answered or not, or named by a failure), by name."""
    names = sorted(set(view.series_names or []) | set(view.results)
                   | {f["series"] for f in view.failures if f.get("series")})
    return {name: series_entry(view.shown(name) if name in view.results else {},
                               [f for f in view.failures if f.get("series") == name])
            for name in names}





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


class RevisionLines:
    """`watch` of a live request: its first answer (the results table; json: the results document on one
    line), then one line per revision as it comes, oldest first (json: one document per line), each once."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.answered = False
        self.sent: dict[str, int] = {}  # series → the last revision printed

    def show(self, view: RequestView) -> None:
        if not view.done:
            return
        if not self.answered:  # json: the results document as one line, then each revision's
            print(results_table(view) if self.output == "table" else json.dumps(plain(result_document(view)),
                                                                                  allow_nan=False))
        self.answered = True
        new = [r for name, s in view.live.items() for r in s.since(self.sent.get(name, -1))]
        for revision in sorted(new, key=lambda r: (r["published_at"] or 0, r["series"], r["revision"])):
            doc = revision_document(view.request_id, revision)
            print(json.dumps(plain(doc), allow_nan=False) if self.output == "json" else revision_line(doc))
            self.sent[revision["series"]] = revision["revision"]
        sys.stdout.flush()


def revision_document(request_id: str, revision: dict[str, Any]) -> dict[str, Any]:
    """One revision as `watch --output json` prints it: what the line shows, then the whole forecast."""
    fc = revision["forecast"]
    stamps, values = revision.get("actual_timestamps") or [], revision.get("actual_values") or []
    last_value = values[-1] if stamps and stamps[-1] == revision["last_timestamp"] else None

    def first(key: str) -> float | None:
        return (fc.get(key) or [None])[0]

    accuracy = revision.get("accuracy") or {}
    return {"request_id": request_id, "series": revision["series"], "revision": revision["revision"],
            "last_timestamp": revision["last_timestamp"], "last_value": last_value,
            "next_timestamp": (fc["timestamps"] or [None])[0], "next_forecast": first("yhat"),
            "next_lower_80": first("lower_80"), "next_upper_80": first("upper_80"),
            "rolling_error": accuracy.get("error"), "estimator": accuracy.get("estimator"),
            "threshold": accuracy.get("threshold"), "model": revision["model"],
            "switched": revision.get("switched"), "points": revision["points"],
            "published_at": revision.get("published_at"), "forecast": fc, "accuracy": revision.get("accuracy")}


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def revision_line(doc: dict[str, Any]) -> str:
    """`sales  revision 24  last 2026-01-23 113.5  next 2026-01-24 114 [110.2, 117.8]  mae 3.5  seasonal_naive`"""
    band = f" [{_num(doc['next_lower_80'])}, {_num(doc['next_upper_80'])}]" if doc["next_lower_80"] is not None else ""
    nxt = f"next {_short(doc['next_timestamp'])} {_num(doc['next_forecast'])}{band}" if doc["next_timestamp"] else ""
    error = f"{doc['estimator'] or 'error'} {_num(doc['rolling_error'])}"
    switched = doc.get("switched")
    change = f" (was {switched['from_model']}: {switched['reason']})" if switched else ""
    return (f"{doc['series']}  revision {doc['revision']}  last {_short(doc['last_timestamp'])} "
            f"{_num(doc['last_value'])}  {nxt}  {error}  {doc['model']}{change}")


def _short(stamp: str) -> str:
    """An ISO timestamp without a midnight time: 2026-01-23T00:00:00 → 2026-01-23."""
    return stamp[:10] if stamp[10:19] in ("", "T00:00:00") and not stamp[19:].strip("0.") else stamp
