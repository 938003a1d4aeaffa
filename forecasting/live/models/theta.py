"""theta: statsforecast's `forward` (the fitted alpha, theta, initial level and model type, no search) over a
bounded tail of the last `TAIL_POINTS` points, on each forecast. Theta's state holds the mean of the whole
series and its seasonal decomposition is of the whole series, so there is no exact O(1) step; on the bounded
tail the cost is flat in the stream's length (O(TAIL_POINTS)) and the forecast equals a from-scratch forecast
with those parameters on those points (`forward_theta` then `forecast_theta`).

Those two calls cost 2-3 ms a forecast, most of it in generic code around a few µs of filtering: statsmodels'
full O(n²) autocorrelation for one lag's test, its pandas-based seasonal decomposition, a scipy quantile, a
fresh random generator and four `np.quantile` calls over 200 simulated paths. `_forward` and `_forecast` below
are the same steps for these fixed parameters in plain numpy around statsforecast's own C++ filter
(`_lib.theta.pegels_resid`, `forecast`): the same simulated paths (the same seed's normal draws, computed once
per horizon), one sort for the four bounds. Equal to statsforecast's answer within 1e-6 relative
(the intervals are quantiles of float32 paths; tests/forecasting/live/test_models.py). Only on the
statsforecast version they were written for (`STATSFORECAST_THETA`); on any other, and for what they do not
cover (a non-normal error distribution, fewer than 10 residuals), statsforecast's own calls."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from forecasting.live.models.base import LiveModel, pack, unpack
from forecasting.models.base import ForecastModel, Prediction

TAIL_POINTS = 1_000
STATSFORECAST_THETA = "2.1.1"  # the version whose theta.py `_forward` and `_forecast` follow step by step
_NMSE = 3  # auto_theta's default
_SAMPLES = 200  # compute_pi_samples' default paths
_NORM_95 = 1.6448536269514722  # scipy.stats.norm.ppf(0.95): auto_theta's seasonality test


class LiveTheta(LiveModel):
    kind = "theta"

    def __init__(self, params: dict[str, Any], tail: np.ndarray) -> None:
        self.params, self.tail = params, np.asarray(tail, dtype=float)[-TAIL_POINTS:]

    @classmethod
    def from_fitted(cls, model: ForecastModel, y: np.ndarray) -> Self:
        mod = model._model.model_  # type: ignore[attr-defined]
        par = mod["par"]
        params = {"m": int(mod["m"]), "modeltype": str(mod["modeltype"]), "alpha": float(par["alpha"]),
                  "theta": float(par["theta"]), "initial_smoothed": float(par["initial_smoothed"])}
        return cls(params, np.asarray(y, dtype=float))

    def fork(self) -> Self:
        return copy.copy(self)  # update rebinds `tail`; `params` is only read

    def update(self, values: Sequence[float]) -> None:
        if len(values):
            self.tail = np.concatenate([self.tail, np.asarray(values, dtype=float)])[-TAIL_POINTS:]

    def _predict(self, h: int, levels: tuple[int, ...]) -> Prediction:
        return self._predict_on(self.tail, h, levels)

    def _predict_on(self, y: np.ndarray, h: int, levels: tuple[int, ...]) -> Prediction:
        p = self.params
        fitted = {"m": p["m"], "modeltype": p["modeltype"],
                  "par": {"alpha": p["alpha"], "theta": p["theta"], "initial_smoothed": p["initial_smoothed"]}}
        out = _forecast(_forward(fitted, y), h, levels) if _fast() else None
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


def _seasonal(y: np.ndarray, m: int, multiplicative: bool) -> np.ndarray:
    """statsmodels' `seasonal_decompose(y, model, period=m).seasonal` (centred moving average, per-position
    means of the detrended values, normalised), in numpy."""
    filt = np.array([0.5] + [1.0] * (m - 1) + [0.5]) / m if m % 2 == 0 else np.repeat(1.0 / m, m)
    trend = np.full(len(y), np.nan)
    valid = np.convolve(y, filt, mode="valid")
    head = int(math.ceil(len(filt) / 2.0) - 1)
    trend[head:head + len(valid)] = valid
    detrended = y / trend if multiplicative else y - trend
    padded = np.full(-(-len(y) // m) * m, np.nan)
    padded[:len(y)] = detrended
    averages = np.nanmean(padded.reshape(-1, m), axis=0)  # position i's mean: of detrended[i::m]
    averages = averages / np.mean(averages) if multiplicative else averages - np.mean(averages)
    return np.tile(averages, len(y) // m + 1)[:len(y)]


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
        acov = np.array([xo.dot(xo)] + [xo[k:].dot(xo[:-k]) for k in range(1, m + 1)]) / n
        r = acov[1:] / acov[0]
        stat = np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / n)
        decompose = bool(np.abs(r[-1]) / stat > _NORM_95)
    model_y, seasonal, multiplicative = y, None, False
    if decompose:
        multiplicative = bool(np.min(y) > 0)
        seasonal = _seasonal(y, m, multiplicative)
        if multiplicative and np.any(seasonal < 0.01):
            multiplicative = False
            seasonal = _seasonal(y, m, False)
        model_y = y / seasonal if multiplicative else y - seasonal
    if n <= 3:
        raise NotImplementedError("tiny datasets")
    theta = 2.0 if mtype in ("STM", "DSTM") else par["theta"]  # initparamtheta: the standard models' theta is 2
    params = {"initial_smoothed": par["initial_smoothed"], "alpha": par["alpha"], "theta": theta}
    amse, e, states, mse = _theta.pegels_resid(model_y, switch_theta(mtype), params["initial_smoothed"],
                                               params["alpha"], theta, _NMSE)
    if np.isnan(mse):
        raise Exception("no model able to be fitted")  # statsforecast's own words
    model: dict[str, Any] = {"mse": mse, "amse": amse, "residuals": e, "m": m, "states": states, "par": params,
                             "n": n, "modeltype": mtype, "mean_y": np.mean(model_y), "distribution": "normal"}
    if seasonal is not None:
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


def _forecast(obj: dict[str, Any], h: int, levels: tuple[int, ...]) -> dict[str, np.ndarray] | None:
    """statsforecast's `forecast_theta(obj, h, level)` for normal errors; None where it is not that case."""
    from statsforecast._lib import theta as _theta
    from statsforecast.theta import switch_theta

    n, states = obj["n"], obj["states"]
    alpha, theta = obj["par"]["alpha"], obj["par"]["theta"]
    forecast = np.empty(h)
    _theta.forecast(states, n, switch_theta(obj["modeltype"]), forecast, alpha, theta)
    res = {"mean": forecast}
    if levels:
        tail = obj["residuals"][3:]
        if len(tail) < 2 or np.count_nonzero(~np.isnan(tail)) < 10:
            return None  # statsforecast's other branches
        sigma = np.std(tail, ddof=1)
        # compute_pi_samples, step for step (the same dtypes: float32 paths), with its draws precomputed
        samples = np.full((h, _SAMPLES), fill_value=np.nan, dtype=np.float32)
        smoothed, _, A, B, _ = states[-1]
        mean_y = obj["mean_y"]
        normals = _normals(h)
        for i in range(n, n + h):
            samples[i - n] = smoothed + (1 - 1 / theta) * (
                A * ((1 - alpha) ** i) + B * (1 - (1 - alpha) ** (i + 1)) / alpha
            )
            samples[i - n] += sigma * normals[i - n]
            smoothed = alpha * samples[i - n] + (1 - alpha) * smoothed
            mean_y = (i * mean_y + samples[i - n]) / (i + 1)
            B = ((i - 1) * B + 6 * (samples[i - n] - mean_y) / (i + 1)) / (i + 2)
            A = mean_y - B * (i + 2) / 2
        ordered = np.sort(samples, axis=1).astype(np.float64)  # one sort for the four bounds
        for lv in levels:
            low = (100 - lv) / 200
            res[f"lo-{lv}"], res[f"hi-{lv}"] = _quantile(ordered, low), _quantile(ordered, low + lv / 100)
    if obj.get("decompose", False):
        seas = obj["seas_forecast"]["mean"]
        seas = np.tile(seas, math.ceil(h / seas.size))[:h]
        for key in res:
            res[key] = res[key] * seas if obj["decomposition_type"] == "multiplicative" else res[key] + seas
    return res


def _quantile(ordered: np.ndarray, q: float) -> np.ndarray:
    """np.quantile's default (linear) of each row of `ordered` (sorted rows), as numpy interpolates; its virtual
    index is computed in other steps, so equal to about 1e-7 relative, not to the bit."""
    n = ordered.shape[1]
    virtual = q * (n - 1)
    below = min(int(math.floor(virtual)), n - 1)
    t = virtual - below
    a, b = ordered[:, below], ordered[:, min(below + 1, n - 1)]
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t
