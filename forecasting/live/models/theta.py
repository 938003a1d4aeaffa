"""theta: statsforecast's `forward` (the fitted alpha, theta, initial level and model type, no search) over a
bounded tail of the last `TAIL_POINTS` points, on each forecast. Theta's state holds the mean of the whole
series and its seasonal decomposition is of the whole series, so there is no exact O(1) step; on the bounded
tail the cost is flat in the stream's length (O(TAIL_POINTS)) and the forecast equals a from-scratch forecast
with those parameters on those points (`forward_theta` then `forecast_theta`).

statsforecast's own calls cost 2-3 ms a forecast, most of it in generic code around a little filtering:
statsmodels' full O(n²) autocorrelation for one lag's test, its pandas-based seasonal decomposition, an O(n²)
C++ filter (2.1.1's `calc` copies the states before each point: 0.6 ms at 1,000 points), a scipy quantile and
200 simulated paths stepped in Python. Here, for these fixed parameters: the same test, decomposition and
filter in numpy (`_forward`; from `_VECTORISED_FROM` points the filter is `_pegels_resid`, below it
statsforecast's C++ one), statsforecast's C++ mean, and the intervals from the same 200 paths (the same seed's
normal draws) as linear algebra: the paths are linear in the last state and the draws, `L (d + sigma z)`, with
`L` and the draws' quantile rows depending only on alpha, theta, the tail's length and h (`_Paths`, kept while
those stay: once the tail is full, every revision). statsforecast stores its paths in float32; ours are that
recursion in float64 (1e-12 of the paths' scale from a float64 replay of it), so statsforecast's bounds are
within 1e-6 of the paths' scale of ours (its float32 rounding), the mean within 1e-12 (tests/forecasting/live/
test_model_algebra.py). Only on the statsforecast version they were written for (`STATSFORECAST_THETA`); on
any other, and for what they do not cover (a non-normal error distribution, fewer than 10 residuals),
statsforecast's own calls. Upstream source:
https://github.com/Nixtla/statsforecast/blob/v2.1.1/python/statsforecast/theta.py"""

from __future__ import annotations

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
_VECTORISED_FROM = 200  # tail length from which `_pegels_resid` is cheaper than statsforecast's O(n²) C++ one
_NA, _TOL = -99999.0, 1e-10  # statsforecast's theta.cpp NA and TOL
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
        return self.shallow_copy()  # update rebinds `tail`; `params` is only read, `_paths` only replaced

    def update(self, values: Sequence[float]) -> None:
        if len(values):
            self.tail = np.concatenate([self.tail, np.asarray(values, dtype=float)])[-TAIL_POINTS:]

    def _predict(self, h: int, levels: tuple[int, ...]) -> Prediction:
        return self._predict_on(self.tail, h, levels)

    def _predict_on(self, y: np.ndarray, h: int, levels: tuple[int, ...]) -> Prediction:
        p = self.params
        fitted = {"m": p["m"], "modeltype": p["modeltype"],
                  "par": {"alpha": p["alpha"], "theta": p["theta"], "initial_smoothed": p["initial_smoothed"]}}
        out: dict[str, np.ndarray] | None = None
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
    return _frozen(np.bincount(np.arange(head, head + valid) % m, minlength=m).astype(float))


@functools.lru_cache(maxsize=16)
def _moving_average(m: int) -> np.ndarray:
    """statsmodels' centred moving average filter for period m."""
    return _frozen(np.array([0.5] + [1.0] * (m - 1) + [0.5]) / m if m % 2 == 0 else np.repeat(1.0 / m, m))


@functools.lru_cache(maxsize=64)
def _cycle(n: int, m: int) -> np.ndarray:
    """0, 1, .., m-1, 0, 1, ... (n values): one season's values repeated over n points."""
    return _frozen(np.arange(n) % m)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared by the caches' callers
    return array


def _seasonal(y: np.ndarray, m: int, multiplicative: bool) -> np.ndarray:
    """statsmodels' `seasonal_decompose(y, model, period=m).seasonal` (centred moving average, per-position
    means of the detrended values, normalised), in numpy: one season of it (it repeats)."""
    filt = _moving_average(m)
    trend = np.convolve(y, filt, mode="valid")  # the moving average where it is defined
    head = int(math.ceil(len(filt) / 2.0) - 1)
    inner = y[head:head + len(trend)]
    # per-position sums over whole seasons, the undefined ends as zeros (the same sums as nanmean's, row by row)
    padded = np.zeros(-(-len(y) // m) * m)
    padded[head:head + len(trend)] = inner / trend if multiplicative else inner - trend
    averages = padded.reshape(-1, m).sum(axis=0) / _position_counts(len(y), m, head, len(trend))
    mean = averages.sum() / m  # np.mean's sum and division
    return averages / mean if multiplicative else averages - mean


def _forward(fitted: dict[str, Any], y: np.ndarray) -> dict[str, Any]:
    """statsforecast's `forward_theta(fitted, y)` (auto_theta with every parameter given, normal errors)."""
    from statsforecast._lib import theta as _theta
    from statsforecast.theta import switch_theta

    y = np.asarray(y, dtype=np.float64)
    m, mtype, par = fitted["m"], fitted["modeltype"], fitted["par"]
    n = len(y)
    decompose = False
    if m >= 4 and n >= 2 * m:  # the seasonality test at lag m (statsmodels' acf, biased, only the lags used)
        xo = y - y.sum() / n  # y.mean(), the same sum and division
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
        seasonal = season[_cycle(n, m)]  # np.tile(season, n // m + 1)[:n]
        model_y = y / seasonal if multiplicative else y - seasonal
    if n <= 3:
        raise NotImplementedError("tiny datasets")
    theta = 2.0 if mtype in ("STM", "DSTM") else par["theta"]  # initparamtheta: the standard models' theta is 2
    params = {"initial_smoothed": par["initial_smoothed"], "alpha": par["alpha"], "theta": theta}
    if n >= _VECTORISED_FROM:
        e, states, mse = _pegels_resid(model_y, mtype, params["initial_smoothed"], params["alpha"], theta)
    else:
        # nmse 1, not auto_theta's 3: it only sets `amse` (the multi-step errors, unused here), and `calc`
        # forecasts nmse steps from every point (the same residuals, states and mse to the bit: tests)
        _, e, states, mse = _theta.pegels_resid(model_y, switch_theta(mtype), params["initial_smoothed"],
                                                params["alpha"], theta, 1)
    if np.isnan(mse):
        raise Exception("no model able to be fitted")  # statsforecast's own words
    model: dict[str, Any] = {"mse": mse, "residuals": e, "m": m, "states": states, "par": params, "n": n,
                             "modeltype": mtype, "mean_y": model_y.sum() / n, "distribution": "normal"}
    if season is not None:
        model["residuals"] = e * seasonal if multiplicative else e + seasonal
        model["decompose"] = True
        model["decomposition_type"] = "multiplicative" if multiplicative else "additive"
        model["seas_forecast"] = {"mean": seasonal[-m:]}  # _seasonal_naive(seasonal, h=m, season_length=m)
    return model


def _pegels_resid(y: np.ndarray, mtype: str, initial_smoothed: float, alpha: float, theta: float
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """statsforecast's `_lib.theta.pegels_resid(y, ...)`: residuals, states and mse, vectorised. Its C++
    `calc` is O(n²) in 2.1.1 (each point's one-step forecast copies the states before it: 0.6 ms at 1,000
    points); the recursion is closed-form in numpy: the level an exponential filter (scipy's lfilter, the same
    products and sums: the same bits), the running mean and the dynamic models' trend numerator cumulative sums
    (other rounding: states within 1e-9 relative, residuals within 1e-14 of the series' scale; tests).
    Upstream source (`init_state`, `update`, `calc`):
    https://github.com/Nixtla/statsforecast/blob/v2.1.1/src/theta.cpp"""
    from scipy.signal import lfilter

    n = len(y)
    c = 1 - 1 / theta
    t = np.arange(n, dtype=float)
    level = lfilter([alpha], [1.0, -(1 - alpha)], y, zi=[(1 - alpha) * initial_smoothed])[0]
    meany = np.cumsum(y) / (t + 1)
    if mtype in ("DSTM", "DOTM"):  # A and B follow the running regression on time
        An, Bn = np.empty(n), np.empty(n)
        An[0], Bn[0], mu0 = y[0], 0.0, y[0]
        numerator = np.cumsum(6 * t[1:] * (y[1:] - meany[:-1]))  # i (i+1) (i+2) B_i, from B_0 = 0
        Bn[1:] = numerator / (t[1:] * (t[1:] + 1) * (t[1:] + 2))
        An[1:] = meany[1:] - Bn[1:] * (t[1:] + 2) / 2
    else:  # A and B of the regression on time over the whole tail, fixed
        y_mean = y.sum() / n
        b0 = (6 * (2 * (y.dot(t + 1) / n) - (n + 1) * y_mean)) / (n * n - 1)
        a0 = y_mean - (n + 1) * b0 / 2
        An, Bn, mu0 = np.full(n, a0), np.full(n, b0), initial_smoothed + c * (a0 + b0)
    decay = (1 - alpha) ** np.arange(n + 1, dtype=float)
    mu = np.empty(n)
    mu[0] = mu0
    mu[1:] = level[:-1] + c * (An[:-1] * decay[1:n] + Bn[:-1] * (1 - decay[2:]) / alpha)
    if np.any(np.abs(mu[1:] - _NA) < _TOL):
        return np.empty(0), np.empty((0, 5)), math.nan  # calc's NA forecast: no model
    e = y - mu
    mse = float((e[3:] ** 2).sum() / max(np.abs(y).sum() / n, _TOL))
    return e, np.column_stack([level, meany, An, Bn, mu]), mse


@functools.lru_cache(maxsize=64)
def _normals(h: int) -> np.ndarray:
    """The standard normal draws of compute_pi_samples' generator (seed 0), step by step: its errors are
    `rng.normal(0, sigma, 200)` = sigma × these, to the bit."""
    draws = np.random.default_rng(0).standard_normal((h, _SAMPLES))
    draws.flags.writeable = False
    return draws


@functools.lru_cache(maxsize=64)
def _steps(h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """0 .. h-1 (floats), k - 1 - j where k > j (else 0) and the mask k > j of an h × h lower triangle."""
    k = np.arange(h)
    below = k[:, None] > k[None, :]
    lags = np.where(below, k[:, None] - k[None, :] - 1, 0).astype(float)
    for array in (k, below, lags):
        array.flags.writeable = False
    return k.astype(float), lags, below


@functools.lru_cache(maxsize=1_024)
def _decays(alpha: float, h: int) -> tuple[np.ndarray, np.ndarray]:
    """(1-α)^k for k < h, and α (1-α)^(k-1-j) below the diagonal (else 0): the smoothed level's part of the
    paths, for one alpha (a few hundred bytes each: one per live theta series and horizon)."""
    k, lags, below = _steps(h)
    return _frozen((1 - alpha) ** k), _frozen(np.where(below, alpha * (1 - alpha) ** lags, 0.0))


def _unit_lower_inverse(lower: np.ndarray) -> np.ndarray:
    """(I - N)⁻¹ for a strictly lower triangular N: I + N + ... + N^(h-1) (N^h = 0), as the product of the
    (I + N^(2^j)): a few matrix products."""
    h = len(lower)
    inverse, power, span = np.eye(h) + lower, lower, 2
    while span < h:
        power = power @ power
        inverse = inverse + inverse @ power
        span *= 2
    return inverse


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
        # The h-long vectors step by step in Python floats: numpy's elementwise operations in the same order (the
        # same bits: IEEE arithmetic, libm's pow, cumsum's running sum), without some twenty numpy calls on a few
        # values each (most of this function's time, rebuilt at every revision while the tail grows).
        ps, qs, bs, us, vs = [], [], [], [], []
        running = 0.0
        for k in range(h):
            i = n + float(k)
            p = (1 - alpha) ** i
            q = (1 - (1 - alpha) * p) / alpha
            ratio = i / (i + 1)
            running += ratio
            wsum = running - ratio  # W_k
            b = c * (q - p * (i + 1) / 2) / (i * (i * i - 1))
            ps.append(p)
            qs.append(q)
            bs.append(b)
            us.append(c * p / i - 6 * b * wsum)
            vs.append(6 * (i + wsum))
        u, b_ = np.array(us), np.array(bs)
        decay, smoothing = _decays(alpha, h)
        below = _steps(h)[2]
        lower = smoothing + (u[:, None] + b_[:, None] * np.array(vs)) * below
        propagator = _unit_lower_inverse(lower)
        ordered = np.sort(propagator @ _normals(h), axis=1)
        lo, hi, t = _interpolation(levels)
        a = ordered[:, lo]
        bounds = (a + (ordered[:, hi] - a) * t).T  # np.quantile's linear interpolation (other rounding: 1e-16)
        return cls(key, propagator, decay, u, b_, (ps[0], qs[0]), bounds)

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
        if obj.get("decompose", False):  # the seasonal factors below, in one operation for every bound
            bounds = _seasonalised(bounds, obj, h)
        for j, lv in enumerate(levels):
            res[f"lo-{lv}"], res[f"hi-{lv}"] = bounds[2 * j], bounds[2 * j + 1]
    if obj.get("decompose", False):
        res["mean"] = _seasonalised(forecast, obj, h)
    return res


def _seasonalised(values: np.ndarray, obj: dict[str, Any], h: int) -> np.ndarray:
    """forecast_theta's last step: the h steps' seasonal factors (the last season's, repeated) applied."""
    seas = obj["seas_forecast"]["mean"]
    seas = seas[_cycle(h, seas.size)]  # np.tile(seas, math.ceil(h / seas.size))[:h]: the same values
    return values * seas if obj["decomposition_type"] == "multiplicative" else values + seas


def _std(x: np.ndarray) -> float:
    """np.std(x, ddof=1), the same steps (mean, squared deviations summed, divided, square root)."""
    deviations = x - x.sum() / len(x)
    return float(np.sqrt((deviations * deviations).sum() / (len(x) - 1)))
