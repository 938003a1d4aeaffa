"""autoets: statsforecast's ETS state equations (its own `pegelsresid_C`) run from the last state over the new
points only, with the fitted smoothing parameters; sigma² is kept as the running sum of squared errors over
n - n_params - 1, exactly as statsforecast's `forward` recomputes it over the whole series. O(1) a point
(one state vector of 1 + trend + season values).

The forecast is statsforecast's `forecast_ets` (its C++ mean, its interval formulas), to the bit, with what
depends only on the fitted parameters and h computed once (`_Intervals`): the variance multipliers of the
class-1 models (additive errors: sigma² × a function of the parameters and the step), the c-values of the
class-2 ones (multiplicative errors, no multiplicative season) and the Kronecker matrices of the class-3 ones
(multiplicative error and season); a forecast then does the few operations that depend on the state and sigma².
Those formulas are copied from statsforecast's private `_compute_pred_intervals` and `_class3models`, so they
are used only on the version they were written for (`STATSFORECAST_ETS`); on any other, and for what they do
not cover (classes 4 and 5, simulated; a non-normal error distribution), statsforecast's own `forecast_ets`.
Upstream source: https://github.com/Nixtla/statsforecast/blob/v2.1.1/python/statsforecast/ets.py"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from forecasting.live.models.base import LiveModel, normal_intervals
from forecasting.models.base import ForecastModel, Prediction
from forecasting.models.quantiles import cache_normal_quantiles

_NMSE = 3  # statsforecast's default: the multi-step MSE horizon of the fit (not used for the forecast)
STATSFORECAST_ETS = "2.1.1"  # the version whose ets.py interval formulas `_Intervals` follows


class LiveETS(LiveModel):
    kind = "autoets"

    def __init__(self, fitted: dict[str, Any], state: np.ndarray, ssq: float, n: int) -> None:
        # `fitted`: what the equations and intervals need of statsforecast's model dict (small values only)
        self.fitted, self.x, self.ssq, self.n = fitted, np.asarray(state, dtype=float), float(ssq), int(n)
        self._intervals: dict[int, _Intervals | None] = {}  # by h: shared by forks (it depends on `fitted` only)

    @classmethod
    def from_fitted(cls, model: ForecastModel, y: np.ndarray) -> Self:
        mod = model._model.model_  # type: ignore[attr-defined]
        fitted = {"components": str(mod["components"]), "m": int(mod["m"]), "par": [float(p) for p in mod["par"]],
                  "n_params": int(mod["n_params"]), "distribution": str(mod.get("distribution", "normal"))}
        e2 = np.asarray(mod["residuals"], dtype=float) ** 2
        return cls(fitted, np.asarray(mod["states"][-1], dtype=float), float(e2[np.isfinite(e2)].sum()),
                   len(np.asarray(y)))

    def fork(self) -> Self:
        return self.shallow_copy()  # update rebinds `x`, `ssq` and `n`; `fitted` is only read

    def update(self, values: Sequence[float]) -> None:
        from statsforecast.ets import pegelsresid_C

        y = np.asarray(values, dtype=float)
        if not len(y):
            return
        error, trend, season, damped = self.fitted["components"][:4]
        alpha, beta, gamma, phi = self.fitted["par"][:4]
        _, e, states, _ = pegelsresid_C(y, self.fitted["m"], self.x, error, trend, season, damped != "N",
                                        alpha, beta, gamma, phi, _NMSE)
        e2 = e**2
        for sq in e2[np.isfinite(e2)].tolist():  # one by one: the same sum whatever the batches (no regrouping)
            self.ssq += sq
        self.n += len(y)
        self.x = np.asarray(states[-1], dtype=float)

    def _sigma2(self) -> float:
        return self.ssq / (self.n - self.fitted["n_params"] - 1)

    def _model_dict(self) -> dict[str, Any]:
        return {**self.fitted, "par": np.asarray(self.fitted["par"]), "states": self.x[None, :],
                "sigma2": self._sigma2(), "residuals": np.empty(0), "fitted": np.empty(0)}

    def _predict(self, h: int, levels: tuple[int, ...]) -> Prediction:
        if h not in self._intervals:
            self._intervals[h] = _Intervals.of(self.fitted, h)
        own = self._intervals[h]
        if own is None:
            return self._statsforecast(h, levels)
        mean = own.mean(self.x)
        if not levels:
            return Prediction(mean)
        return normal_intervals(mean, np.sqrt(own.variance(mean, self._sigma2(), self.x)), levels)

    def _statsforecast(self, h: int, levels: tuple[int, ...]) -> Prediction:
        from statsforecast.ets import forecast_ets

        cache_normal_quantiles()
        out = forecast_ets(self._model_dict(), h, level=list(levels) if levels else None)
        mean = np.asarray(out["mean"], dtype=float)
        if not levels:
            return Prediction(mean)
        return Prediction(mean, {lv: (np.asarray(out[f"lo-{lv}"], dtype=float), np.asarray(out[f"hi-{lv}"],
                                                                                           dtype=float))
                                 for lv in levels})

    def state(self) -> dict[str, Any]:
        return {"fitted": self.fitted, "x": self.x.tolist(), "ssq": self.ssq, "n": self.n}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        return cls(state["fitted"], np.asarray(state["x"]), state["ssq"], state["n"])


@functools.cache
def _fast() -> bool:
    import statsforecast

    return statsforecast.__version__ == STATSFORECAST_ETS


@dataclass(frozen=True)
class _Intervals:
    """statsforecast's `forecast_ets(model, h, level)` for one fitted model and h: its mean (`pegelsfcast_C`'s
    C++ call) and the variances `_compute_pred_intervals` gives, the same operations in the same order, with
    what depends on the parameters and h alone computed once. `kind` is the class: 1 (sigma² × `factor`), 2
    (statsforecast's `_compute_sigmah` of the mean, sigma² and `factor`, the c-values) or 3 (`_class3models`
    with its matrices in `matrices`)."""

    h: int
    m: int
    trend: Any  # statsforecast's C++ component enums
    season: Any
    phi: float
    kind: int
    factor: np.ndarray | None = None
    matrices: dict[str, Any] | None = None

    @classmethod
    def of(cls, fitted: dict[str, Any], h: int) -> _Intervals | None:
        """None: not covered here (another statsforecast, a non-normal distribution, classes 4 and 5)."""
        from statsforecast.ets import switch

        if not _fast() or fitted.get("distribution", "normal") != "normal":
            return None
        components, m = fitted["components"], fitted["m"]
        error, trend, seasonality, damped = components[:4]
        par = np.asarray(fitted["par"])
        phi = 1 if damped == "N" else par[3]
        common = {"h": h, "m": m, "trend": switch(trend), "season": switch(seasonality), "phi": phi}
        if trend == "M" and seasonality != "M":  # statsforecast simulates those (classes 4 and 5)
            return None
        if error == "A" and seasonality != "M":
            return cls(**common, kind=1, factor=_class1_factor(components, par, m, h))
        if error == "M" and seasonality != "M":
            return cls(**common, kind=2, factor=_class2_cvals(components, par, m, h))
        if error == "M" and seasonality == "M":
            return cls(**common, kind=3, matrices=_class3_matrices(components, par, m))
        return None

    def mean(self, x: np.ndarray) -> np.ndarray:
        """pegelsfcast_C(h, model): statsforecast's `etsforecast` from the last state."""
        from statsforecast.ets import etsforecast

        forecast = np.full(self.h, fill_value=np.nan)
        etsforecast(x=x, m=self.m, trend=self.trend, season=self.season, phi=self.phi, h=self.h, f=forecast)
        return forecast

    def variance(self, mean: np.ndarray, sigma: float, x: np.ndarray) -> np.ndarray:
        """`_compute_pred_intervals`' sigmah (the variance of each step) for sigma² `sigma`."""
        if self.kind == 1:
            assert self.factor is not None
            return sigma * self.factor
        if self.kind == 2:
            from statsforecast.ets import _compute_sigmah

            return _compute_sigmah(mean, self.h, sigma, self.factor)
        assert self.matrices is not None
        return _class3_variance(self.h, sigma, x, self.m, self.matrices)


def _class1_factor(components: str, par: np.ndarray, season_length: int, h: int) -> np.ndarray:
    """statsforecast's class-1 sigmah before its product with sigma² (its expressions, verbatim)."""
    steps = np.arange(1, h + 1)
    hm = np.floor((h - 1) / season_length)
    error, trend, seasonality, damped = components[:4]
    alpha, beta, gamma, phi = par[0], par[1], par[2], par[3]
    exp1 = alpha**2 + alpha * beta * steps + (1 / 6) * beta**2 * steps * (2 * steps - 1)
    exp2 = (beta * phi * steps) / (1 - phi) ** 2
    exp3 = 2 * alpha * (1 - phi) + beta * phi
    exp4 = (beta * phi * (1 - phi**steps)) / ((1 - phi) ** 2 * (1 - phi**2))
    exp5 = 2 * alpha * (1 - phi**2) + beta * phi * (1 + 2 * phi - phi**steps)
    if trend == "N" and seasonality == "N":  # ANN
        return 1 + alpha**2 * (steps - 1)
    if trend == "A" and seasonality == "N" and damped == "N":  # AAN
        return 1 + (steps - 1) * exp1
    if trend == "A" and seasonality == "N" and damped == "D":  # AAdN
        return 1 + alpha**2 * (steps - 1) + exp2 * exp3 - exp4 * exp5
    if trend == "N" and seasonality == "A":  # ANA
        return 1 + alpha**2 * (steps - 1) + gamma * hm * (2 * alpha + gamma)
    if trend == "A" and seasonality == "A" and damped == "N":  # AAA
        exp6 = 2 * alpha + gamma + beta * season_length * (hm + 1)
        return 1 + (steps - 1) * exp1 + gamma * hm * exp6
    if trend == "A" and seasonality == "A" and damped == "D":  # AAdA
        exp7 = (2 * beta * gamma * phi) / ((1 - phi) * (1 - phi**season_length))
        exp8 = hm * (1 - phi**season_length) - phi**season_length * (1 - phi ** (season_length * hm))
        return (1 + alpha**2 * (steps - 1) + exp2 * exp3 - exp4 * exp5 + gamma * hm * (2 * alpha + gamma)
                + exp7 * exp8)
    raise ValueError(f"not a class-1 ETS model: {components}")


def _class2_cvals(components: str, par: np.ndarray, season_length: int, h: int) -> np.ndarray:
    """statsforecast's class-2 c-values (its expressions, verbatim)."""
    steps = np.arange(1, h + 1)
    _, trend, seasonality, damped = components[:4]
    alpha, beta, gamma, phi = par[0], par[1], par[2], par[3]
    dvals = np.zeros(h)
    for k in range(1, h + 1):
        if k % season_length == 0:
            dvals[k - 1] = 1
    if trend == "N" and seasonality == "N":  # MNN
        return np.full(h, alpha)
    if trend == "A" and seasonality == "N" and damped == "N":  # MAN
        return alpha + beta * steps
    if trend == "N" and seasonality == "A":  # MNA
        return alpha + gamma * dvals
    if trend == "A" and seasonality == "A" and damped == "N":  # MAA
        return alpha * beta * steps + gamma * dvals
    if trend == "A" and damped == "D":  # MAdN, MAdA
        cvals = np.full(h, np.nan)
        for k in range(1, h + 1):
            sum_phi = 0
            for j in range(1, k + 1):
                sum_phi = sum_phi + phi**j
            if seasonality == "N":
                cvals[k - 1] = alpha + beta * sum_phi
            else:
                cvals[k - 1] = alpha + beta * sum_phi + gamma * dvals[k - 1]
        return cvals
    raise ValueError(f"not a class-2 ETS model: {components}")


def _class3_matrices(components: str, par: np.ndarray, season_length: int) -> dict[str, Any]:
    """`_class3models`' matrices (its construction, verbatim): they depend on the parameters only."""
    _, trend, _, damped = components[:4]
    alpha, beta, gamma, phi = par[0], par[1], par[2], par[3]
    H1 = np.array([[1, 1]]) if trend != "N" else np.array([[1]])
    H2 = np.concatenate((np.zeros(season_length - 1), np.array([1]))).reshape(1, season_length)
    if trend == "N":
        F1: Any = 1
        G1: Any = alpha
    else:
        F1 = np.array([[1, 1], [0, phi if damped != "N" else 1]])
        G1 = np.array([[alpha, alpha], [beta, beta]])
    f2_top = np.concatenate((np.zeros(season_length - 1), np.array([1]))).reshape(1, season_length)
    f2_bottom = np.c_[(np.identity(season_length - 1), np.zeros(season_length - 1).reshape(season_length - 1, 1))]
    F2 = np.r_[f2_top, f2_bottom]
    G2 = np.zeros((season_length, season_length))
    G2[0, season_length - 1] = gamma
    H21, F21, G21 = np.kron(H2, H1), np.kron(F2, F1), np.kron(G2, G1)
    return {"H1": H1, "H2": H2, "H21": H21, "F21": F21, "G21": G21, "K": np.kron(G2, F1) + np.kron(F2, G1)}


def _class3_variance(h: int, sigma: float, last_state: np.ndarray, season_length: int,
                     mat: dict[str, Any]) -> np.ndarray:
    """`_class3models`' loop, the same products in the same order; not repeated: what does not change in it
    (its Mh, so mu and the outer product; sigma × G21; Vh @ F21.T, computed twice a step there) and the last
    step's update of Vh (never read)."""
    H1, H2, H21, F21, G21, K = mat["H1"], mat["H2"], mat["H21"], mat["F21"], mat["G21"], mat["K"]
    p = len(last_state)
    Mh = np.matmul(last_state[0:(p - season_length)].reshape(last_state[0:(p - season_length)].shape[0], 1),
                   last_state[(p - season_length):p].reshape(1, season_length))
    Vh = np.zeros((Mh.shape[0] * Mh.shape[1], Mh.shape[0] * Mh.shape[1]))
    mu = np.float64((H1 @ (Mh @ H2.T)).item())  # as read back from statsforecast's `mu` array
    vecMh = Mh.flatten()
    outer = vecMh * vecMh.reshape(vecMh.shape[0], 1)
    twice_outer = 2 * vecMh * vecMh.reshape(vecMh.shape[0], 1)
    sigma_G21 = sigma * G21
    F21_T, G21_T, K_T = np.transpose(F21), np.transpose(G21), np.transpose(K)
    var = np.zeros(h)
    for i in range(0, h):
        var[i] = (1 + sigma) * (H21 @ (Vh @ H21.T)).item() + sigma * mu**2
        if i == h - 1:
            break
        VF = np.matmul(Vh, F21_T)
        exp1 = np.matmul(F21, VF)
        exp2 = np.matmul(F21, np.matmul(Vh, G21_T))
        exp3 = np.matmul(G21, VF)
        exp4 = np.matmul(K, np.matmul(Vh + outer, K_T))
        exp5 = np.matmul(sigma_G21, np.matmul(3 * Vh + twice_outer, G21_T))
        Vh = exp1 + sigma * (exp2 + exp3 + exp4 + exp5)
    return var
