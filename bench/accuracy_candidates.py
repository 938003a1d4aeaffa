"""How the accuracy configuration was chosen: `python bench/accuracy_candidates.py [--stride 4] [--models LIST]
[--origins 0,9]`.

For every `stride`-th M3 monthly series, each candidate (a core model, optionally `model|transformation`) is
fitted as the core fits it: a validation fit on the training part less h points at each origin (0: the core's
hold-out; 9: the hold-out ending 9 points earlier), scored on the held-out points, and the final fit on the whole
training part. The fits are cached (bench/results/accuracy_candidates_STRIDE.pkl; `--refit` to redo them), then
the strategies are scored with the M4 metrics: each candidate alone, fixed medians and means of subsets,
the rank-weighted mean of subsets of 4 to 6 (`rank_weighted_mean`), selection of the k best by hold-out
error (MAE, sMAPE, MASE; one origin or all), and a fallback that keeps the
single best only when it validates clearly better. Prints sMAPE, OWA and the strategy, best OWA first. Not part of
`make bench` (the README's *Accuracy on M3 monthly* quotes it)."""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import m4_metrics  # noqa: E402
from accuracy import Task, load_tasks  # noqa: E402
from scale_common import RESULTS  # noqa: E402

from forecasting.models import get_model_class  # noqa: E402
from forecasting.transformations import make_transformation  # noqa: E402
from forecasting.workers import init_worker  # noqa: E402

DEFAULT_MODELS = "dynamic_optimized_theta,theta,autoets,autoces,naive,seasonal_naive"
Forecast = tuple[np.ndarray | None, float]  # the mean (None: failed) and the fit's CPU seconds


def fit(candidate: str, y: np.ndarray, h: int) -> Forecast:
    model, _, transformation = candidate.partition("|")
    t0 = time.process_time()
    tr = make_transformation(transformation or "none").fit(y)
    series = pd.Series(tr.apply(y), index=pd.date_range(end="2000-01-01", periods=len(y), freq="MS"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = get_model_class(model)(season_length=12, options={}).fit(series)
            mean = np.asarray(tr.inverse(np.asarray(fitted.predict(h, ()).mean, dtype=float)), dtype=float)
        return (mean if np.all(np.isfinite(mean)) else None), time.process_time() - t0
    except Exception:  # a failed candidate is scored as Naive2
        return None, time.process_time() - t0


def fits_of(task: Task, candidates: tuple[str, ...], origins: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    out = {}
    for c in candidates:
        val = {o: fit(c, task.x[: len(task.x) - o - task.h], task.h) for o in origins}
        out[c] = {"val": val, "final": fit(c, task.x, task.h)}
    return task.name, out


def _warm(candidates: tuple[str, ...]) -> None:
    init_worker()
    for c in candidates:
        fit(c, 50 + np.sin(np.arange(60.0)) + np.arange(60.0), 3)


def strategies(tasks: list[Task], fits: dict[str, dict[str, Any]], origins: tuple[int, ...]) -> list[tuple]:
    naive2 = {t.name: m4_metrics.naive2(t.x, t.h, t.period) for t in tasks}

    def evaluate(forecasts: dict[str, np.ndarray | None]) -> tuple[float, float]:
        s, m, ns, nm = [], [], [], []
        for t in tasks:
            f = forecasts.get(t.name)
            f = naive2[t.name] if f is None else f
            s.append(m4_metrics.smape(t.xx, f))
            m.append(m4_metrics.mase(t.x, t.xx, f, t.period))
            ns.append(m4_metrics.smape(t.xx, naive2[t.name]))
            nm.append(m4_metrics.mase(t.x, t.xx, naive2[t.name], t.period))
        return float(np.mean(s)), m4_metrics.owa(s, m, ns, nm)

    def val_err(t: Task, c: str, metric: str, at: tuple[int, ...]) -> float:
        errs = []
        for o in at:
            f = fits[t.name][c]["val"][o][0]
            if f is None:
                return np.inf
            end = len(t.x) - o
            actual, train = t.x[end - t.h:end], t.x[:end - t.h]
            if metric == "mae":
                errs.append(float(np.mean(np.abs(actual - f))))
            elif metric == "smape":
                errs.append(m4_metrics.smape(actual, f))
            else:
                errs.append(m4_metrics.mase(train, actual, f, t.period))
        return float(np.mean(errs))

    def comb(members: list[np.ndarray | None], statistic: str) -> np.ndarray | None:
        got = [f for f in members if f is not None]
        return None if not got else (np.median(got, 0) if statistic == "median" else np.mean(got, 0))

    def final(t: Task, c: str) -> np.ndarray | None:
        return fits[t.name][c]["final"][0]

    candidates = list(fits[tasks[0].name])
    good = [c for c in candidates if c.partition("|")[0] not in ("naive", "seasonal_naive")]
    rows = [(*evaluate({t.name: final(t, c) for t in tasks}), f"alone {c}") for c in candidates]
    for r in range(2, min(len(good), 5) + 1):
        for sub in itertools.combinations(good, r):
            for stat in ("median", "mean"):
                rows.append((*evaluate({t.name: comb([final(t, c) for c in sub], stat) for t in tasks}),
                             f"{stat} of {', '.join(sub)}"))
    def rank_weighted(t: Task, sub: tuple[str, ...]) -> np.ndarray | None:
        """combination statistic rank_weighted_mean (k = all): weights k ... 1 by hold-out MAE, failed ones out."""
        usable = [c for c in sub if final(t, c) is not None and np.isfinite(val_err(t, c, "mae", (0,)))]
        ranked = sorted(usable, key=lambda c: val_err(t, c, "mae", (0,)))  # stable: ties keep the given order
        if not ranked:
            return None
        return np.average([final(t, c) for c in ranked], axis=0, weights=np.arange(len(ranked), 0, -1.0))

    for r in range(4, min(len(good), 6) + 1):
        for sub in itertools.combinations(good, r):
            rows.append((*evaluate({t.name: rank_weighted(t, sub) for t in tasks}),
                         f"rank-weighted mean of {', '.join(sub)} by hold-out mae"))
    for pool_name, pool in (("all", candidates), ("all but the naives", good)):
        for metric in ("mae", "smape", "mase"):
            for at in dict.fromkeys(((0,), origins)):
                for k in range(1, min(4, len(pool)) + 1):
                    for stat in ("median", "mean") if k > 2 else ("mean",):
                        forecasts = {}
                        for t in tasks:
                            ranked = sorted(pool, key=lambda c: val_err(t, c, metric, at))  # noqa: B023
                            forecasts[t.name] = comb([final(t, c) for c in ranked[:k]], stat)
                        rows.append((*evaluate(forecasts), f"{stat} of the {k} best of {pool_name} by hold-out "
                                     f"{metric}, origins {list(at)}"))
    for k in (3, 4):
        for ratio in (0.5, 0.7, 0.8, 0.9):
            forecasts = {}
            for t in tasks:
                errs = {c: val_err(t, c, "mae", (0,)) for c in good}
                ranked = sorted(good, key=errs.__getitem__)
                alone = len(ranked) > 1 and errs[ranked[0]] < ratio * errs[ranked[1]]
                forecasts[t.name] = final(t, ranked[0]) if alone else comb([final(t, c) for c in ranked[:k]],
                                                                           "median")
            rows.append((*evaluate(forecasts), f"the best alone when its MAE < {ratio} x the runner-up's, else the "
                         f"median of {k}"))
    return sorted(rows, key=lambda r: r[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--models", default=DEFAULT_MODELS, help="core models, `model|transformation` too")
    parser.add_argument("--origins", default="0,9", help="validation origins, points before the core's")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--refit", action="store_true", help="fit again instead of reading the cache")
    args = parser.parse_args()
    candidates = tuple(c.strip() for c in args.models.split(",") if c.strip())
    origins = tuple(int(o) for o in args.origins.split(","))
    tasks = load_tasks("M3", "monthly", args.stride)
    cache = RESULTS / f"accuracy_candidates_{args.stride}.pkl"
    fits: dict[str, dict[str, Any]] = pickle.loads(cache.read_bytes()) if cache.exists() and not args.refit else {}
    todo = tuple(c for c in candidates if not fits or c not in fits[tasks[0].name]
                 or set(origins) - set(fits[tasks[0].name][c]["val"]))
    if todo:
        with ProcessPoolExecutor(args.workers, initializer=_warm, initargs=(todo,)) as pool:
            for name, got in pool.map(partial(fits_of, candidates=todo, origins=origins), tasks, chunksize=2):
                fits.setdefault(name, {}).update(got)
        RESULTS.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(fits))
    fits = {name: {c: f[c] for c in candidates} for name, f in fits.items()}
    cpu = {c: np.mean([fits[t.name][c]["final"][1] for t in tasks]) for c in candidates}
    print(f"every {args.stride}. M3 monthly series ({len(tasks)}); CPU-s of one fit: "
          + ", ".join(f"{c} {v:.3f}" for c, v in cpu.items()))
    for smape, owa, what in strategies(tasks, fits, origins):
        print(f"{smape:7.2f} {owa:.3f}  {what}")


if __name__ == "__main__":
    main()
