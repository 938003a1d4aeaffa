"""Compare a re-forecast with the original: both best models per series and, where the new request's data
covers the old forecast horizon, the error the old forecast actually made on those new values."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from forecasting.metrics import compute_metrics
from timex_stream.runtime.records import history_of
from timex_stream.runtime.request_view import RequestView
from timex_stream.tools.render import number, table

REALIZED = ("MAE", "MAPE")  # errors of the old forecast on values that happened since


@dataclass
class SeriesComparison:
    series: str
    estimator: str | None
    old_model: str | None
    old_score: float | None  # test error of the old best model, by the old config's estimator
    new_model: str | None
    new_score: float | None
    horizon: int  # points the old forecast had
    covered: int  # of those, points the new request's history holds
    realized: dict[str, float]  # MAE, MAPE of the old forecast on the covered points

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _instant(stamp: str) -> np.datetime64:
    return np.datetime64(stamp, "us")


def _score(best: dict[str, Any] | None, estimator: str | None) -> float | None:
    if not best or not estimator:
        return None
    value = (best.get("metrics") or {}).get(estimator)
    return None if value is None or math.isnan(value) else float(value)


def compare_series(name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> SeriesComparison:
    old, new = old or {}, new or {}
    estimator = ((old or new).get("main_accuracy_estimator") or "").upper() or None
    forecast = old.get("forecast") or {"timestamps": [], "yhat": []}
    history = history_of(new)
    actual_at = dict(zip(history.stamps_us.astype("datetime64[us]"), history.values.tolist(), strict=True))
    pairs = [(actual_at[t], y) for t, y in zip(map(_instant, forecast["timestamps"]), forecast["yhat"], strict=True)
             if t in actual_at]
    realized: dict[str, float] = {}
    if pairs:
        actual, predicted = np.array(pairs).T
        metrics = compute_metrics(actual, predicted, history_of(old).values)
        realized = {k: metrics[k] for k in REALIZED}
    return SeriesComparison(name, estimator, old.get("model"), _score(old, estimator), new.get("model"),
                            _score(new, estimator), len(forecast["timestamps"]), len(pairs), realized)


def compare(old: RequestView, new: RequestView) -> list[SeriesComparison]:
    names = sorted(set(old.results) | set(new.results))
    return [compare_series(n, old.results.get(n), new.results.get(n)) for n in names]


def comparison_table(old: RequestView, new: RequestView, rows: list[SeriesComparison]) -> str:
    head = f"old {old.request_id} ({old.status}) vs new {new.request_id} ({new.status})"
    if new.replay_of:
        head += f"; {new.request_id} is a replay of {new.replay_of}"
    body = []
    for r in rows:
        est = r.estimator or ""
        realized = (f"MAE {number(r.realized['MAE'])}, MAPE {number(r.realized['MAPE'])}% "
                    f"on {r.covered}/{r.horizon} points" if r.covered else f"0/{r.horizon} points in new data")
        body.append([r.series, f"{r.old_model or '-'} ({est} {number(r.old_score)})",
                     f"{r.new_model or '-'} ({est} {number(r.new_score)})", realized])
    return head + "\n" + table(["series", "old best (test error)", "new best (test error)",
                                "old forecast vs new data"], body)
