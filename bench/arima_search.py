"""ARIMA search, old vs new, on series of 100 to 5,000 points: `python bench/arima_search.py [--sizes ...]`.

Old = the search before the long-series change (exact likelihood for every candidate at any length); new =
forecasting.models.statsforecast_models.AutoARIMA as it is (CSS search, exact refit of the best, beyond
150 points). Each series: fit on all but the last 12 points, test MAE on those 12 (as TIMEX scores a
unit), CPU seconds of the fit (single-threaded BLAS, so CPU is the work; wall is noisy on a shared machine).
Where the TIMEX reference venv exists (--timex-venv, built by the shared timex-reference.sh: README, Performance), also
pmdarima's auto_arima as TIMEX 1.2.3 calls it (seasonal=False) on the same points.

Series: 100 = the last 100 months of bench/data/monthly.csv (sales, temperature); 700 = the bench's own
generator (forecast_core.make_monthly_data) at 700 months (sales, temperature); other sizes: synthetic
monthly seasonal + trend + random-walk level + noise with a fixed seed. Prints a table; writes
bench/results/arima_search.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: BLAS threads spin on these tiny matrices

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forecast_core import DEFAULT_DATA, make_monthly_data  # noqa: E402

from forecasting.models import statsforecast_models  # noqa: E402
from forecasting.models.statsforecast_models import AutoARIMA  # noqa: E402

TEST = 12
SEASON = 12
RESULTS = ROOT / "bench" / "results" / "arima_search.json"

# Runs in the TIMEX reference venv (Python 3.10, pmdarima 1.8.5): TIMEX 1.2.3's call, one line of JSON out.
PMDARIMA_SCRIPT = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pmdarima as pm
out = []
for case in json.load(sys.stdin):
    train = np.asarray(case["train"], dtype=float)
    cpu = time.process_time()
    model = pm.auto_arima(train, error_action="ignore", seasonal=False, suppress_warnings=True)
    pred = model.predict(n_periods=len(case["test"]))
    cpu = time.process_time() - cpu
    out.append({"cpu_s": cpu, "mae": float(np.mean(np.abs(np.asarray(pred) - case["test"]))),
                "order": str(model.order)})
print(json.dumps(out))
"""


def synthetic(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    year = 2 * np.pi * t / SEASON
    level = np.cumsum(rng.normal(0, 0.3, n))
    return 50 + 0.02 * t + 10 * np.sin(year) + 3 * np.cos(2 * year) + level + rng.normal(0, 2, n)


def cases(sizes: list[int]) -> list[tuple[str, np.ndarray]]:
    out = []
    for n in sizes:
        if n in (100, 700):
            if n == 100:
                if not DEFAULT_DATA.exists():
                    make_monthly_data(DEFAULT_DATA)
                frame = pd.read_csv(DEFAULT_DATA)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    make_monthly_data(Path(tmp) / "m.csv", n=n)
                    frame = pd.read_csv(Path(tmp) / "m.csv")
            source = "monthly.csv" if n == 100 else "make_monthly_data"
            for column in ("sales", "temperature"):
                out.append((f"{source}:{column}", frame[column].to_numpy(float)[-n:]))
        else:
            out.append(("synthetic", synthetic(n, seed=n)))
    return out


def fit_once(values: np.ndarray, old: bool) -> dict:
    """One fit as the pipeline makes it; `old` restores the exact search at every length."""
    saved = statsforecast_models._EXACT_SEARCH_MAX_POINTS
    statsforecast_models._EXACT_SEARCH_MAX_POINTS = sys.maxsize if old else saved
    train, test = values[:-TEST], values[-TEST:]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cpu, wall = time.process_time(), time.perf_counter()
            model = AutoARIMA(season_length=SEASON).fit(pd.Series(train))
            pred = model.predict(TEST, ()).mean
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        statsforecast_models._EXACT_SEARCH_MAX_POINTS = saved
    return {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "mae": round(float(np.mean(np.abs(pred - test))), 4),
            "order": model.params()["order"]}


def pmdarima_runs(timex_venv: Path | None, series: list[np.ndarray]) -> list[dict] | None:
    python = timex_venv / "venv" / "bin" / "python" if timex_venv else None
    if python is None or not python.exists():
        return None
    payload = json.dumps([{"train": v[:-TEST].tolist(), "test": v[-TEST:].tolist()} for v in series])
    done = subprocess.run([str(python), "-W", "ignore", "-c", PMDARIMA_SCRIPT], input=payload, text=True,
                          capture_output=True, timeout=3600, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    if done.returncode != 0:
        print(f"pmdarima run failed: {done.stderr[-500:]}", file=sys.stderr)
        return None
    return [{**r, "cpu_s": round(r["cpu_s"], 2), "mae": round(r["mae"], 4)} for r in json.loads(done.stdout)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,700,2000,5000", help="series lengths, comma separated")
    parser.add_argument("--timex-venv", default=os.environ.get("TIMEX_REFERENCE_DIR", ""),
                        help="the TIMEX reference directory (timex-reference.sh); default $TIMEX_REFERENCE_DIR")
    parser.add_argument("--skip-old-over", type=int, default=10_000, help="skip the old search beyond N points")
    args = parser.parse_args()
    for old in (True, False):  # compile statsforecast's numba code outside the timings
        fit_once(synthetic(200, seed=0), old=old)
    rows, all_values = [], []
    for name, values in cases([int(s) for s in args.sizes.split(",")]):
        all_values.append(values)
        old = fit_once(values, old=True) if len(values) <= args.skip_old_over else None
        new = fit_once(values, old=False)
        rows.append({"points": len(values), "series": name, "old": old, "new": new})
        print(f"fitted {len(values)} {name}: old {old} new {new}", file=sys.stderr, flush=True)
    reference = pmdarima_runs(Path(args.timex_venv) if args.timex_venv else None, all_values)
    for row, ref in zip(rows, reference or [None] * len(rows), strict=True):
        row["pmdarima"] = ref
    print_table(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"test_points": TEST, "season_length": SEASON, "rows": rows}, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def print_table(rows: list[dict]) -> None:
    head = f"{'points':>6} {'series':<28} {'old cpu':>8} {'new cpu':>8} {'x':>5} {'old MAE':>9} {'new MAE':>9} " \
           f"{'pmd cpu':>8} {'pmd MAE':>9}  new order"
    print(head)
    for r in rows:
        old, new, ref = r["old"] or {}, r["new"], r["pmdarima"] or {}
        ratio = f"{old['cpu_s'] / max(new['cpu_s'], 1e-3):.1f}" if old else "-"
        print(f"{r['points']:>6} {r['series']:<28} {old.get('cpu_s', '-'):>8} {new['cpu_s']:>8} {ratio:>5} "
              f"{old.get('mae', '-'):>9} {new['mae']:>9} {ref.get('cpu_s', '-'):>8} {ref.get('mae', '-'):>9}  "
              f"{new['order']}")


if __name__ == "__main__":
    main()
