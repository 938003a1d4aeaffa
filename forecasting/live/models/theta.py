"""theta: the fitted model's own equations (statsforecast's theta.cpp `update`) run from the fit's last
state over the new points only, one step a point, with the fit's parameters (alpha, theta, initial level, model
type) and the fit's seasonal decomposition (its m factors, multiplicative or additive, continued period by
period, as the fit's forecast continues them). O(1) a point, no history kept.

statsforecast's `forward_theta` on a stream would redo the fit's seasonality test and decomposition on all the
data at each forecast and filter it again from the first point: O(n) a forecast (2.1.1's C++ filter O(n²)), so
the last live form did that on a bounded tail of the last 1,000 points, 0.1-0.2 ms a revision and as much for
each point folded under load (the forecast a point's realised accuracy needs). Here the decomposition is what
was fitted, like ETS' seasonal states, and is re-estimated when the model is (a re-selection).

What the forecast needs after n points is O(1):
- the last state row (level, running mean, A, B): the dynamic models (DSTM, DOTM) update all four per point with
  the C++ expressions in the same order (the same bits as statsforecast's filter over all the points); the
  others keep A and B of the regression on time over all the points (theta.cpp `init_state`), from two running
  sums (Σ y, Σ (i+1) y; within 1e-12 of it);
- sigma, np.std(residuals[3:], ddof=1) (the residuals on the data's scale: the model's × the point's factor, or
  + it for an additive decomposition): a dynamic model's residual is final once its point is folded; the
  others' residual i is r_i - c A p_i - c B q_i with r_i = y_i - level_(i-1) final, p_i = (1-α)^i and
  q_i = (1 - (1-α) p_i) / α, so, for the current A and B, w_i - L f_i - K P_i with constants L and K (`_sigma`).
  Its variance comes from the means and centred co-moments of (w, f, P), updated per point (Welford's): no large
  sums that cancel, so on a stream of 200,000 points with a steep trend sigma stays within 1e-8 of np.std of
  all the residuals (tests/forecasting/live/test_model_algebra.py).
The mean is theta.cpp's `forecast` loop; the intervals are compute_pi_samples' 200 normal paths as linear
algebra (`_Paths`: `L (d + sigma z)` with L and the draws' quantile rows depending only on alpha, theta, n and h)
in float64, where statsforecast keeps its paths in float32: its bounds are within 1e-6 of the paths' scale of
ours (tests/forecasting/live/test_model_algebra.py). The draws are compute_pi_samples' generator's (seed 0), so
this form is used only on the statsforecast version it was written for (`STATSFORECAST_THETA`), with normal
errors and at least 10 residuals after the burn-in (sample_errors' other branches); otherwise `from_fitted`
says NotUpdatable and the model refits (forecasting.live.models.refit). Upstream source:
https://github.com/Nixtla/statsforecast/blob/v2.1.1/python/statsforecast/theta.py and src/theta.cpp"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from forecasting.live.models.base import LiveModel, NotUpdatable
from forecasting.models.base import ForecastModel, Prediction

STATSFORECAST_THETA = "2.1.1"  # the version whose theta.py compute_pi_samples (its draws) `_Paths` follows
_SAMPLES = 200  # compute_pi_samples' default paths
_BURN_IN = 3  # forecast_theta's sigma leaves out the first three residuals
_MIN_RESIDUALS = 10  # below this many after the burn-in, sample_errors takes another branch
_DYNAMIC = ("DSTM", "DOTM")


class LiveTheta(LiveModel):
    kind = "theta"

    def __init__(self, params: dict[str, Any], season: Sequence[float] | None) -> None:
        # params: m, modeltype, alpha, theta (2 for the standard models), initial_smoothed, decomposition
        # ("multiplicative", "additive" or None); season[i % m]: the factor of the stream's point i (from 0: the
        # fit's first point)
        self.params = params
        self.season = tuple(float(s) for s in season) if season is not None else None
        self.n = 0
        self.level = self.meany = self.A = self.B = 0.0
        self.sy = self.sty = 0.0  # Σ y and Σ (i+1) y of the model's values (mean_y; the standard models' A and B)
        self.sums = (0.0,) * 9  # over the residuals after the burn-in: `_comoments`, `_sigma`
        self._paths: _Paths | None = None  # the last forecast's path algebra (it depends on alpha, theta, n, h)

    @classmethod
    def from_fitted(cls, model: ForecastModel, y: np.ndarray) -> Self:
        mod = model._model.model_  # type: ignore[attr-defined]
        if not _fast():
            raise NotUpdatable(f"statsforecast other than {STATSFORECAST_THETA}: its theta's draws may differ")
        if str(mod.get("distribution", "normal")) != "normal":
            raise NotUpdatable("theta with non-normal errors")
        par, mtype, m = mod["par"], str(mod["modeltype"]), int(mod["m"])
        alpha = float(par["alpha"])
        theta = 2.0 if mtype in ("STM", "DSTM") else float(par["theta"])  # initparamtheta: the standard models' 2
        if not alpha > 0 or theta == 0 or len(y) < _BURN_IN + _MIN_RESIDUALS:
            raise NotUpdatable("theta with alpha 0, theta 0 or too few points for its intervals' sigma")
        season = None
        decomposition = str(mod["decomposition_type"]) if mod.get("decompose", False) else None
        if decomposition is not None:
            last = np.asarray(mod["seas_forecast"]["mean"], dtype=float)  # the factors of points n .. n+m-1
            season = [0.0] * m
            for j, factor in enumerate(last.tolist()):
                season[(len(y) + j) % m] = factor
        live = cls({"m": m, "modeltype": mtype, "alpha": alpha, "theta": theta,
                    "initial_smoothed": float(par["initial_smoothed"]), "decomposition": decomposition}, season)
        live.update(np.asarray(y, dtype=float).tolist())  # the fit's filter over its own points, then the stream's
        return live

    def fork(self) -> Self:
        return self.shallow_copy()  # update rebinds every attribute it changes (floats and tuples)

    def update(self, values: Sequence[float]) -> None:
        p = self.params
        alpha, initial, dynamic = p["alpha"], p["initial_smoothed"], p["modeltype"] in _DYNAMIC
        c = 1 - 1 / p["theta"]
        season, multiplicative = self.season, p["decomposition"] == "multiplicative"
        n, level, meany, A, B, sy, sty = self.n, self.level, self.meany, self.A, self.B, self.sy, self.sty
        sums = list(self.sums)
        for value in values:
            i = n
            x = float(value)
            factor = season[i % len(season)] if season is not None else None
            y = x if factor is None else (x / factor if multiplicative else x - factor)
            if i >= _BURN_IN and dynamic:  # a dynamic model's residual is final: (w, f, P) = (it, 0, 0)
                e = y - _one_step(i, level, A, B, alpha, c)
                _comoments(sums, i - _BURN_IN + 1,
                           e if factor is None else (e * factor if multiplicative else e + factor), 0.0, 0.0)
            elif i >= _BURN_IN:  # residual = w - L f - K P, see `_sigma`
                w, f, pw = y - level, 1.0, (1 - alpha) ** i
                if factor is not None:
                    w, f, pw = (w * factor, factor, pw * factor) if multiplicative else (w + factor, 1.0, pw)
                _comoments(sums, i - _BURN_IN + 1, w, f, pw)
            if i > 0:
                level, meany, A, B = _step(i, y, level, meany, A, B, alpha, dynamic)
            else:  # init_state: the first point is its own forecast (a standard model's A and B: below)
                level, meany, A, B = alpha * y + (1 - alpha) * initial, y, y, 0.0
            sy += y  # the paths' mean_y (every model type) and the standard models' regression
            sty += (i + 1) * y
            n += 1
        if not dynamic and n:  # init_state's regression on time over all the points (weights 1 .. n)
            y_mean = sy / n
            B = (6 * (2 * (sty / n) - (n + 1) * y_mean)) / (n * n - 1) if n > 1 else 0.0
            A = y_mean - (n + 1) * B / 2
        self.n, self.level, self.meany, self.A, self.B, self.sy, self.sty = n, level, meany, A, B, sy, sty
        self.sums = tuple(sums)

    def _sigma(self) -> float:
        """np.std(residuals[3:], ddof=1) for the current state. A residual is w - L f - K P (see `update`): for a
        dynamic model w itself (L = K = 0); for a standard one, since its A and B are those of all the points,
        L = c B / α and K = c (A - B (1-α) / α) (c A p + c B q with q = (1 - (1-α) p) / α), w = r, f = 1,
        P = p (times the factor where it multiplies). Its variance from the centred co-moments of (w, f, P):
        no large sums cancel, however long the stream or steep its trend."""
        count = self.n - _BURN_IN
        _, _, _, cww, cff, cpp, cwf, cwp, cfp = self.sums
        if self.params["modeltype"] in _DYNAMIC:
            square = cww
        else:
            alpha, c = self.params["alpha"], 1 - 1 / self.params["theta"]
            big_l, big_k = c * self.B / alpha, c * (self.A - self.B * (1 - alpha) / alpha)
            square = (cww + big_l * big_l * cff + big_k * big_k * cpp - 2 * big_l * cwf - 2 * big_k * cwp
                      + 2 * big_l * big_k * cfp)
        return math.sqrt(max(square, 0.0) / (count - 1))

    def _predict(self, h: int, levels: tuple[int, ...]) -> Prediction:
        p = self.params
        alpha, theta, n = p["alpha"], p["theta"], self.n
        c = 1 - 1 / theta
        dynamic = p["modeltype"] in _DYNAMIC
        # theta.cpp `forecast`: its state update with each forecast as the next value
        level, meany, A, B = self.level, self.meany, self.A, self.B
        mean = []
        for i in range(n, n + h):
            mu = _one_step(i, level, A, B, alpha, c)
            mean.append(mu)
            level, meany, A, B = _step(i, mu, level, meany, A, B, alpha, dynamic)
        out = np.array(mean)
        bounds = None
        if levels:
            paths = self._paths
            if paths is None or paths.key != (alpha, theta, n, h, levels):
                paths = self._paths = _Paths.of(alpha, theta, n, h, levels)
            bounds = paths.mean_path(self.level, self.A, self.B, self.sy / n, c) + self._sigma() * paths.bounds
        if self.season is not None:
            m = len(self.season)
            factors = np.array([self.season[(n + j) % m] for j in range(h)])
            if p["decomposition"] == "multiplicative":
                out = out * factors
                bounds = bounds * factors if bounds is not None else None
            else:
                out = out + factors
                bounds = bounds + factors if bounds is not None else None
        if bounds is None:
            return Prediction(out)
        return Prediction(out, {lv: (bounds[2 * k], bounds[2 * k + 1]) for k, lv in enumerate(levels)})

    def state(self) -> dict[str, Any]:
        return {"params": self.params, "season": list(self.season) if self.season is not None else None,
                "n": self.n, "level": self.level, "meany": self.meany, "A": self.A, "B": self.B, "sy": self.sy,
                "sty": self.sty, "sums": list(self.sums)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        live = cls(state["params"], state["season"])
        live.n, live.level, live.meany, live.A, live.B = (int(state["n"]), float(state["level"]),
                                                          float(state["meany"]), float(state["A"]), float(state["B"]))
        live.sy, live.sty, live.sums = float(state["sy"]), float(state["sty"]), tuple(float(s) for s in state["sums"])
        return live


@functools.cache
def _fast() -> bool:
    import statsforecast

    return statsforecast.__version__ == STATSFORECAST_THETA


def _one_step(i: int, level: float, A: float, B: float, alpha: float, c: float) -> float:
    """theta.cpp's forecast of point i from the row before it (its column 4), in its order of operations."""
    return level + c * (A * (1 - alpha) ** i + B * (1 - (1 - alpha) ** (i + 1)) / alpha)


def _step(i: int, y: float, level: float, meany: float, A: float, B: float, alpha: float, dynamic: bool
          ) -> tuple[float, float, float, float]:
    """theta.cpp's state update with point i (i > 0) of value y: the level, the running mean and, for a dynamic
    model, B and A (a standard model's stay: the regression over all the points)."""
    new_mean = (i * meany + y) / (i + 1)
    if dynamic:
        B = ((i - 1) * B + 6 * (y - meany) / (i + 1)) / (i + 2)
        A = new_mean - B * (i + 2) / 2
    return alpha * y + (1 - alpha) * level, new_mean, A, B


def _comoments(sums: list[float], count: int, w: float, f: float, p: float) -> None:
    """Welford's update of the means and centred co-moment sums of (w, f, P) with the `count`-th values:
    sums = [mean w, mean f, mean P, Cww, Cff, CPP, Cwf, CwP, CfP]."""
    dw, df, dp = w - sums[0], f - sums[1], p - sums[2]
    sums[0] += dw / count
    sums[1] += df / count
    sums[2] += dp / count
    ew, ef, ep = w - sums[0], f - sums[1], p - sums[2]
    sums[3] += dw * ew
    sums[4] += df * ef
    sums[5] += dp * ep
    sums[6] += dw * ef
    sums[7] += dw * ep
    sums[8] += df * ep


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared by the caches' callers
    return array


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

    key: tuple[float, float, int, int, tuple[int, ...]]  # alpha, theta, n, h, levels
    propagator: np.ndarray  # L
    decay: np.ndarray  # (1-α)^k
    u: np.ndarray
    b: np.ndarray
    first: tuple[float, float]  # (1-α)^n, (1 - (1-α)^(n+1)) / α: the first step's factors of A and B
    bounds: np.ndarray  # (2 × levels, h): the quantile rows of L z, each level's low then high

    @classmethod
    def of(cls, alpha: float, theta: float, n: int, h: int, levels: tuple[int, ...]) -> _Paths:
        key = (alpha, theta, n, h, levels)
        c = 1 - 1 / theta
        # The h-long vectors step by step in Python floats: numpy's elementwise operations in the same order (the
        # same bits: IEEE arithmetic, libm's pow, cumsum's running sum), without some twenty numpy calls on a few
        # values each (most of this function's time, rebuilt at every revision: n moves on with each point).
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
