"""Benchmark of the forecasting core alone: `python bench/forecast_core.py [CONFIG.json]`.

Runs forecasting.pipeline.forecast_all (a process pool over units, 2 workers by default) on a TIMEX
config and prints ONE JSON line: wall_s, cpu_s (this process and its workers), fits, and per series the
best model, its transformation and its test metrics. Default: bench/configs/monthly.json on
bench/data/monthly.csv (generated deterministically when missing). `source_data_url` may be a local
path (relative to the repo root or the config) or an http URL on 127.0.0.0/8 only.

Compare with TIMEX 1.2.3: `--timex-config OUT.json --port N` writes the same config with
source_data_url = http://127.0.0.1:N/<csv name> for bench/run_timex.py.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import resource
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forecasting.config import parse_config  # noqa: E402
from forecasting.pipeline import forecast_all  # noqa: E402

DEFAULT_CONFIG = ROOT / "bench" / "configs" / "monthly.json"
DEFAULT_DATA = ROOT / "bench" / "data" / "monthly.csv"


def make_monthly_data(path: Path, n: int = 144, seed: int = 7) -> None:
    """Five monthly series of known structure (seasonal, multiplicative, random walk, AR(1), trend)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    year = 2 * np.pi * t / 12
    frame = pd.DataFrame(
        {
            "month": pd.date_range("2010-01-01", periods=n, freq="MS").strftime("%Y-%m-%d"),
            "sales": 200 + 0.8 * t + 25 * np.sin(year) + 8 * np.cos(2 * year) + rng.normal(0, 5, n),
            "visitors": (1000 + 6 * t) * (1 + 0.3 * np.sin(year - 1)) * np.exp(rng.normal(0, 0.04, n)),
            "price": 50 + np.cumsum(rng.normal(0.1, 1.5, n)),
            "demand": 80 + _ar1(rng, n, 0.7, 4.0),
            "temperature": 12 + 9 * np.sin(year - 2) + rng.normal(0, 1.2, n),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.round(3).to_csv(path, index=False)


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
    out = np.zeros(n)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + rng.normal(0, sigma)
    return out


def read_source(url: str, config_path: Path) -> bytes:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("http", "https"):
        host = parsed.hostname or ""
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise SystemExit(f"refusing {url}: the bench only reads 127.0.0.0/8 or local files")
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read()
    for candidate in (Path(url), ROOT / url, config_path.parent / url):
        if candidate.is_file():
            return candidate.read_bytes()
    raise SystemExit(f"source_data_url {url!r} is neither a loopback URL nor an existing file")


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timex-config", help="write a TIMEX-runnable copy of the config here and exit")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    config_path = Path(args.config)
    raw = json.loads(config_path.read_text())
    if config_path.resolve() == DEFAULT_CONFIG and not DEFAULT_DATA.exists():
        make_monthly_data(DEFAULT_DATA)
    if args.timex_config:
        csv_name = Path(raw["input_parameters"]["source_data_url"]).name
        raw["input_parameters"]["source_data_url"] = f"http://127.0.0.1:{args.port}/{csv_name}"
        Path(args.timex_config).write_text(json.dumps(raw, indent=2))
        return
    started, cpu0 = time.perf_counter(), _cpu_seconds()
    parsed = parse_config(raw)
    csv_bytes = read_source(parsed.config.input_parameters.source_data_url, config_path)
    choices = forecast_all(parsed.config, csv_bytes, max_workers=args.workers)
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu0
    fits = 0
    series = {}
    for name, choice in choices.items():
        units = choice.comparison + choice.errors
        fits += len(units) + sum(1 for r in choice.per_model.values() if r.forecast is not None)
        if choice.best is None:
            series[name] = {"error": choice.data_error or "every unit failed"}
            continue
        best = choice.best
        series[name] = {
            "best": best.spec.model,
            "transformation": best.spec.transformation,
            "window": best.spec.window,
            "metrics": {k: _clean(v) for k, v in best.metrics.items()},
            "mae_per_model": {m: _clean(r.metrics["MAE"]) for m, r in choice.per_model.items()},
        }
    print(
        json.dumps(
            {
                "config": str(config_path),
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 1),
                "fits": fits,
                "warnings": parsed.warnings,
                "series": series,
            }
        )
    )


if __name__ == "__main__":
    main()
