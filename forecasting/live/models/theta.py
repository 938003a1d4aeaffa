"""theta: statsforecast's `forward` (the fitted alpha, theta, initial level and model type, no search) over a
bounded tail of the last `TAIL_POINTS` points, on each forecast. Theta's state holds the mean of the whole
series and its seasonal decomposition is of the whole series, so there is no exact O(1) step; on the bounded
tail the cost is flat in the stream's length (O(TAIL_POINTS)) and the forecast equals a from-scratch forecast
with those parameters on those points (`forward_theta` then `forecast_theta`).

Those two calls cost 2-3 ms a forecast, most of it in generic code around a few µs of filtering: statsmodels'
full O(n²) autocorrelation for one lag's test, its pandas-based seasonal decomposition, a scipy quantile, a
fresh random generator and four `np.quantile` calls over 200 simulated paths. `_forward` and `_forecast` below
are the same steps for these fixed parameters in plain numpy around statsforecast's own C++ filter
(`_lib.theta.pegels_resid`, `forecast`), and the same mean. The intervals are quantiles of statsforecast's 200
simulated paths (`compute_pi_samples`: the same seed's normal draws), whose steps are linear in the last state
and the draws: the paths are `L @ (d + sigma × draws)`, with `L` and the draws' quantile rows depending only on
alpha, theta, the tail's length and h (`_Paths`, kept while those stay: once the tail is full, every revision),
so a forecast is a few vector operations and no simulation. statsforecast stores its paths in float32: ours are
that recursion in float64 (tests: 1e-12 relative to a float64 replay of it), and statsforecast's own answer is
within 1e-6 of the paths' scale of it (its float32 rounding; tests/forecasting/live/test_models.py). Only on the
statsforecast version they were written for (`STATSFORECAST_THETA`); on any other, and for what they do not
cover (a non-normal error distribution, fewer than 10 residuals), statsforecast's own calls."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from forecasting.live.models.base import LiveModel, pack, unpack
from forecasting.models.base import ForecastModel, Prediction

TAIL_POINTS = 1_000
STATSFORECAST_THETA = "2.1.1"  # the version whose theta.py `_forward`, `_forecast`, `compute_pi_samples` these follow
_SAMPLES = 200  # compute_pi_samples' default paths
_NORM_95 = 1.6448536269514722  # scipy.stats.norm.ppf(0.95): auto_theta's seasonality test


class LiveTheta(LiveModel):
    kind = "theta"

    def __init__(self, params: dict[str, Any], tail: np.ndarray) -> None:
        self.params, self.tail = params, np.asarray(tail, dtype=float)[-TAIL_POINTS:]
        self._paths: _Paths | None = None  # the last forecast's path algebra (it depends on the parameters, n, h)

    @classmethod
    def from_fitted(cls, model: ForecastModel, y: np.ndarray) -> Self:
        mod = model._model.model_  # type: ignore[attr-defined]
        par = mod["par"]
        params = {"m": int(mod["m"]), "modeltype": str(mod["modeltype"]), "alpha": float(par["alpha"]),
                  "theta": float(par["theta"]), "initial_smoothed": float(par["initial_smoothed"])}
        return cls(params, np.asarray(y, dtype=float))

    def fork(self) -> Self:
        return copy.copy(self)  # update rebinds `tail`; `params` is only read, `_paths` only replaced

    def update(self, values: Sequence[float]) -> None:
        if len(values):
            self.tail = np.concatenate([self.tail, np.asarray(values, dtype=float)])[-TAIL_POINTS:]

    def _predict(self, h: int, levels: tuple[int, ...]) -> Prediction:
        return self._predict_on(self.tail, h, levels)

    def _predict_on(self, y: np.ndarray, h: int, levels: tuple[int, ...]) -> Prediction:
        p = self.params
        fitted = {"m": p["m"], "modeltype": p["modeltype"],
                  "par": {"alpha": p["alpha"], "theta": p["theta"], "initial_smoothed": p["initial_smoothed"]}}
        out = None
        if _fast():
            obj = _forward(fitted, y)
            paths = self._paths
            if levels and (paths is None or not paths.fits(obj, h, levels)):
                paths = self._paths = _Paths.of(obj, h, levels)
            out = _forecast(obj, h, levels, paths)
        self.fast_mean = out is not None  # else statsforecast's mean (within 1e-6 of ours, not to the bit)
        if out is None:
            from statsforecast.theta import forecast_theta, forward_theta

            out = forecast_theta(forward_theta(fitted, y), h, level=list(levels) if levels else None)
        mean = np.asarray(out["mean"], dtype=float)
        if not levels:
            return Prediction(mean)
        return Prediction(mean, {lv: (np.asarray(out[f"lo-{lv}"], dtype=float),
                                      np.asarray(out[f"hi-{lv}"], dtype=float)) for lv in levels})

    def mean_is_levels_free(self) -> bool:
        return getattr(self, "fast_mean", False)  # ours: the mean is computed before and apart from the intervals

    def state(self) -> dict[str, Any]:
        return {"params": self.params, "tail": pack(self.tail)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        return cls(state["params"], unpack(state["tail"]))


@functools.cache
def _fast() -> bool:
    import statsforecast

    return statsforecast.__version__ == STATSFORECAST_THETA


@functools.lru_cache(maxsize=64)
def _position_counts(n: int, m: int, head: int, valid: int) -> np.ndarray:
    """How many of the detrended values `head .. head + valid - 1` fall on each position of the season."""
    return np.bincount(np.arange(head, head + valid) % m, minlength=m).astype(float)


def _seasonal(y: np.ndarray, m: int, multiplicative: bool) -> np.ndarray:
    """statsmodels' `seasonal_decompose(y, model, period=m).seasonal` (centred moving average, per-position
    means of the detrended values, normalised), in numpy: one season of it (it repeats)."""
    filt = np.array([0.5] + [1.0] * (m - 1) + [0.5]) / m if m % 2 == 0 else np.repeat(1.0 / m, m)
    trend = np.convolve(y, filt, mode="valid")  # the moving average where it is defined
    head = int(math.ceil(len(filt) / 2.0) - 1)
    inner = y[head:head + len(trend)]
    # per-position sums over whole seasons, the undefined ends as zeros (the same sums as nanmean's, row by row)
    padded = np.zeros(-(-len(y) // m) * m)
    padded[head:head + len(trend)] = inner / trend if multiplicative else inner - trend
    averages = padded.reshape(-1, m).sum(axis=0) / _position_counts(len(y), m, head, len(trend))
    return averages / np.mean(averages) if multiplicative else averages - np.mean(averages)


def _forward(fitted: dict[str, Any], y: np.ndarray) -> dict[str, Any]:
    """statsforecast's `forward_theta(fitted, y)` (auto_theta with every parameter given, normal errors)."""
    from statsforecast._lib import theta as _theta
    from statsforecast.theta import switch_theta

    y = np.asarray(y, dtype=np.float64)
    m, mtype, par = fitted["m"], fitted["modeltype"], fitted["par"]
    n = len(y)
    decompose = False
    if m >= 4 and n >= 2 * m:  # the seasonality test at lag m (statsmodels' acf, biased, only the lags used)
        xo = y - y.mean()
        acov = np.correlate(np.concatenate([xo, np.zeros(m)]), xo) / n  # lags 0..m, in one C loop
        r = acov[1:] / acov[0]
        stat = np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / n)
        decompose = bool(np.abs(r[-1]) / stat > _NORM_95)
    model_y, season, multiplicative = y, None, False
    if decompose:
        multiplicative = bool(np.min(y) > 0)
        season = _seasonal(y, m, multiplicative)
        if multiplicative and np.any(season < 0.01):
            multiplicative = False
            season = _seasonal(y, m, False)
        seasonal = np.tile(season, n // m + 1)[:n]
        model_y = y / seasonal if multiplicative else y - seasonal
    if n <= 3:
        raise NotImplementedError("tiny datasets")
    theta = 2.0 if mtype in ("STM", "DSTM") else par["theta"]  # initparamtheta: the standard models' theta is 2
    params = {"initial_smoothed": par["initial_smoothed"], "alpha": par["alpha"], "theta": theta}
    # nmse 1, not auto_theta's 3: it only sets `amse` (the multi-step errors, unused here), and `calc` forecasts
    # nmse steps from every point (the same residuals, states and mse to the bit: tests)
    amse, e, states, mse = _theta.pegels_resid(model_y, switch_theta(mtype), params["initial_smoothed"],
                                               params["alpha"], theta, 1)
    if np.isnan(mse):
        raise Exception("no model able to be fitted")  # statsforecast's own words
    model: dict[str, Any] = {"mse": mse, "amse": amse, "residuals": e, "m": m, "states": states, "par": params,
                             "n": n, "modeltype": mtype, "mean_y": np.mean(model_y), "distribution": "normal"}
    if season is not None:
        model["residuals"] = e * seasonal if multiplicative else e + seasonal
        model["decompose"] = True
        model["decomposition_type"] = "multiplicative" if multiplicative else "additive"
        model["seas_forecast"] = {"mean": seasonal[-m:]}  # _seasonal_naive(seasonal, h=m, season_length=m)
    return model


@functools.lru_cache(maxsize=64)
def _normals(h: int) -> np.ndarray:
    """The standard normal draws of compute_pi_samples' generator (seed 0), step by step: its errors are
    `rng.normal(0, sigma, 200)` = sigma × these, to the bit."""
    draws = np.random.default_rng(0).standard_normal((h, _SAMPLES))
    draws.flags.writeable = False
    return draws


@functools.lru_cache(maxsize=64)
def _lags(h: int) -> tuple[np.ndarray, np.ndarray]:
    """k - 1 - j for k > j (else 0), and the mask k > j, of an h × h lower triangle."""
    k = np.arange(h)
    below = k[:, None] > k[None, :]
    return np.where(below, k[:, None] - k[None, :] - 1, 0).astype(float), below


@functools.lru_cache(maxsize=16)
def _interpolation(levels: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.quantile's linear rule for forecast_theta's bounds (each level's low then high quantile) of 200 sorted
    values: the index below, the one above and the weight of the one above."""
    qs = [q for lv in levels for q in ((100 - lv) / 200, (100 - lv) / 200 + lv / 100)]
    virtual = np.asarray(qs) * (_SAMPLES - 1)
    below = np.minimum(np.floor(virtual).astype(int), _SAMPLES - 1)
    return below, np.minimum(below + 1, _SAMPLES - 1), virtual - below


@dataclass(frozen=True)
class _Paths:
    """compute_pi_samples' paths as linear algebra. Its step for path values s_k (k = 0 .. h-1, i = n + k):
    s_k = smoothed + c (A (1-α)^i + B (1 - (1-α)^(i+1)) / α) + σ z_k, c = 1 - 1/θ, then smoothed, the running
    mean of the series (mean_y), the trend B and A = mean_y - B (i+2)/2 updated with s_k; each is linear in
    the past s_j, so s = d + N s + σ z for a strictly lower triangular N: s = L (d + σ z), L = (I - N)⁻¹.
    With i = n + k, T0 = n mean_y and D0 = (n-1) n (n+1) B (the running trend's numerator):
    d_k = (1-α)^k smoothed + T0 u_k + D0 b_k (k ≥ 1) and N[k, j] = α (1-α)^(k-1-j) + u_k + b_k v_j, where
    b_k = c ((1 - (1-α)^(i+1)) / α - (1-α)^i (i+1)/2) / ((i-1) i (i+1)), u_k = c (1-α)^i / i - 6 b_k W_k,
    v_j = 6 (n + j + W_j), W_k = Σ_{l<k} (n+l)/(n+l+1); d_0 is the first step with the state's own A.
    The bounds are quantiles of each step's paths: L d + σ × those of L z (σ ≥ 0 keeps the order)."""

    key: tuple[float, float, int, int, tuple[int, ...]]
    propagator: np.ndarray  # L
    decay: np.ndarray  # (1-α)^k
    u: np.ndarray
    b: np.ndarray
    first: tuple[float, float]  # (1-α)^n, (1 - (1-α)^(n+1)) / α: the first step's factors of A and B
    bounds: np.ndarray  # (2 × levels, h): the quantile rows of L z, each level's low then high

    @staticmethod
    def _key(obj: dict[str, Any], h: int, levels: tuple[int, ...]) -> tuple[float, float, int, int, tuple[int, ...]]:
        return float(obj["par"]["alpha"]), float(obj["par"]["theta"]), int(obj["n"]), h, levels

    def fits(self, obj: dict[str, Any], h: int, levels: tuple[int, ...]) -> bool:
        return self.key == self._key(obj, h, levels)

    @classmethod
    def of(cls, obj: dict[str, Any], h: int, levels: tuple[int, ...]) -> _Paths:
        alpha, theta, n, _, _ = key = cls._key(obj, h, levels)
        c = 1 - 1 / theta
        i = n + np.arange(h, dtype=float)
        p = (1 - alpha) ** i
        q = (1 - (1 - alpha) ** (i + 1)) / alpha
        w = np.cumsum(i / (i + 1))
        wsum = np.concatenate([[0.0], w[:-1]])  # W_k
        b = c * (q - p * (i + 1) / 2) / ((i - 1) * i * (i + 1))
        u = c * p / i - 6 * b * wsum
        lags, below = _lags(h)
        lower = np.where(below, alpha * (1 - alpha) ** lags + u[:, None] + b[:, None] * (6 * (i + wsum))[None, :],
                         0.0)
        propagator = np.linalg.inv(np.eye(h) - lower)
        ordered = np.sort(propagator @ _normals(h), axis=1)
        lo, hi, t = _interpolation(levels)
        a, z = ordered[:, lo], ordered[:, hi]
        # np.quantile's lerp: a + (z - a) t, or z - (z - a)(1 - t) from t = 0.5
        bounds = np.where(t >= 0.5, z - (z - a) * (1 - t), a + (z - a) * t).T
        decay = (1 - alpha) ** np.arange(h, dtype=float)
        return cls(key, propagator, decay, u, b, (float(p[0]), float(q[0])), bounds)

    def mean_path(self, smoothed: float, A: float, B: float, mean_y: float, c: float) -> np.ndarray:
        n = self.key[2]
        d = smoothed * self.decay + (n * mean_y) * self.u + ((n - 1) * n * (n + 1) * B) * self.b
        d[0] = smoothed + c * (A * self.first[0] + B * self.first[1])
        return self.propagator @ d


def _forecast(obj: dict[str, Any], h: int, levels: tuple[int, ...], paths: _Paths | None
              ) -> dict[str, np.ndarray] | None:
    """statsforecast's `forecast_theta(obj, h, level)` for normal errors (`paths`: `_Paths.of(obj, h, levels)`);
    None where it is not that case."""
    from statsforecast._lib import theta as _theta
    from statsforecast.theta import switch_theta

    n, states = obj["n"], obj["states"]
    alpha, theta = obj["par"]["alpha"], obj["par"]["theta"]
    forecast = np.empty(h)
    _theta.forecast(states, n, switch_theta(obj["modeltype"]), forecast, alpha, theta)
    res = {"mean": forecast}
    if levels:
        tail = obj["residuals"][3:]
        if len(tail) < 10 or alpha <= 0 or theta == 0:
            return None  # statsforecast's other branches (or its division by zero)
        sigma = _std(tail)
        if np.isnan(sigma) and np.count_nonzero(~np.isnan(tail)) < 10:
            return None
        assert paths is not None and paths.fits(obj, h, levels)
        smoothed, _, A, B, _ = states[-1]
        mean = paths.mean_path(smoothed, A, B, obj["mean_y"], 1 - 1 / theta)
        bounds = mean + sigma * paths.bounds
        for j, lv in enumerate(levels):
            res[f"lo-{lv}"], res[f"hi-{lv}"] = bounds[2 * j], bounds[2 * j + 1]
    if obj.get("decompose", False):
        seas = obj["seas_forecast"]["mean"]
        seas = np.tile(seas, math.ceil(h / seas.size))[:h]
        for key in res:
            res[key] = res[key] * seas if obj["decomposition_type"] == "multiplicative" else res[key] + seas
    return res


def _std(x: np.ndarray) -> float:
    """np.std(x, ddof=1), the same steps (mean, squared deviations summed, divided, square root)."""
    deviations = x - x.sum() / len(x)
    return float(np.sqrt((deviations * deviations).sum() / (len(x) - 1)))
