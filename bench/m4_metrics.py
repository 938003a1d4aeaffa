"""The M4 competition's metrics and its Naive2 benchmark, as its guide defines them (M4 Competitor's Guide, 2018,
and the organisers' R code, github.com/Mcompetitions/M4-methods, `Benchmarks and Evaluation.R`):

- sMAPE = mean over the horizon of 200 |y - f| / (|y| + |f|);
- MASE = mean |y - f| over the horizon ÷ the in-sample mean |x_t - x_{t-m}| (m the period; 1 for yearly);
- Naive2: naive on the seasonally adjusted series. A series is seasonal when its autocorrelation at lag m exceeds
  the 90 % limit 1.645 √((1 + 2 Σ_{k<m} r_k²) / n) (and n ≥ 3m); its indices come from a classical
  multiplicative decomposition (R's `decompose`: a centred moving average of order m, the ratios averaged per
  position in the cycle, normalised to mean 1);
- OWA of a method on a set = (its mean sMAPE ÷ Naive2's + its mean MASE ÷ Naive2's) / 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Z_90 = 1.645  # the two-sided 90 % normal quantile of the M4 code's seasonality test


def acf(x: np.ndarray, lags: int) -> np.ndarray:
    """r_1 … r_lags as R's `acf` computes them (deviations from the mean, divided by n · variance)."""
    d = np.asarray(x, dtype=float) - np.mean(x)
    total = float(np.sum(d * d))
    return np.array([np.sum(d[:-k] * d[k:]) / total for k in range(1, lags + 1)])


def is_seasonal(x: np.ndarray, m: int) -> bool:
    """The M4 test: |r_m| above its 90 % limit; never with m ≤ 1, fewer than 3m points or a constant series."""
    x = np.asarray(x, dtype=float)
    if m <= 1 or len(x) < 3 * m or np.ptp(x) == 0:
        return False
    r = acf(x, m)
    limit = Z_90 * np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / len(x))
    return bool(abs(r[-1]) > limit)


def seasonal_indices(x: np.ndarray, m: int) -> np.ndarray:
    """The m multiplicative indices of a classical decomposition (position 0 = the series' first point)."""
    x = np.asarray(x, dtype=float)
    weights = np.full(m + 1, 1.0 / m) if m % 2 == 0 else np.full(m, 1.0 / m)
    if m % 2 == 0:
        weights[0] = weights[-1] = 0.5 / m  # the 2×m moving average R uses for an even period
    half = len(weights) // 2
    trend = np.full(len(x), np.nan)
    trend[half : len(x) - half] = np.convolve(x, weights, mode="valid")
    ratios = x / trend
    figure = np.array([np.nanmean(ratios[i::m]) for i in range(m)])
    return figure / np.mean(figure)


def naive2(x: np.ndarray, h: int, m: int) -> np.ndarray:
    """The last seasonally adjusted value, re-seasonalised over the horizon (plain naive when not seasonal)."""
    x = np.asarray(x, dtype=float)
    if not is_seasonal(x, m):
        return np.full(h, x[-1])
    figure = seasonal_indices(x, m)
    n = len(x)
    adjusted_last = x[-1] / figure[(n - 1) % m]
    return adjusted_last * figure[(n + np.arange(h)) % m]


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    a, f = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    return float(np.mean(200 * np.abs(a - f) / (np.abs(a) + np.abs(f))))


def mase(insample: np.ndarray, actual: np.ndarray, forecast: np.ndarray, m: int) -> float:
    x = np.asarray(insample, dtype=float)
    lag = m if len(x) > m else 1
    scale = float(np.mean(np.abs(x[lag:] - x[:-lag])))
    return float(np.mean(np.abs(np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float))) / scale)


def owa(smapes: Sequence[float], mases: Sequence[float], naive2_smapes: Sequence[float],
        naive2_mases: Sequence[float]) -> float:
    """Over one set of series (the same series, in any order, for the method and for Naive2)."""
    return 0.5 * (float(np.mean(smapes)) / float(np.mean(naive2_smapes))
                  + float(np.mean(mases)) / float(np.mean(naive2_mases)))
