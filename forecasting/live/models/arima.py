"""arima: one Kalman step a point from the fitted model's last filtered state (statsforecast's own
`arima_like`, the filter its fit and its `forward` run), with the fitted coefficients and sigma²; the intercept
and drift (regression on 1..n) are subtracted as the fit does. O(r²) a point for a state of r = p + d (+ the
seasonal terms) values: no history is kept. A model fitted with regressors is `NotUpdatable` (its future
regressors are not known on a stream): refit it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from forecasting.live.models.base import LiveModel, NotUpdatable, normal_intervals, pack, unpack
from forecasting.models.base import ForecastModel, Prediction


class LiveARIMA(LiveModel):
    kind = "arima"

    def __init__(self, phi: np.ndarray, theta: np.ndarray, delta: np.ndarray, a: np.ndarray, P: np.ndarray,
                 intercept: float, drift: float, sigma2: float, n: int) -> None:
        from statsforecast.arima import make_arima

        self.phi, self.theta, self.delta = (np.asarray(v, dtype=float) for v in (phi, theta, delta))
        self.mod = make_arima(self.phi, self.theta, self.delta)  # T, V, Z of these coefficients
        self.a, self.P = np.array(a, dtype=float), np.array(P, dtype=float)
        self.intercept, self.drift, self.sigma2, self.n = float(intercept), float(drift), float(sigma2), int(n)
        self._rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # `_ahead_rows` by h

    @classmethod
    def from_fitted(cls, model: ForecastModel, y: np.ndarray) -> Self:
        if getattr(model, "_timex", None) is not None:  # arima_seasonal false: statsmodels' SARIMAX, no filter here
            raise NotUpdatable("TIMEX's arima search (statsmodels' SARIMAX)")
        fit = model._model.model_  # type: ignore[attr-defined]
        extra = set(fit["coef"]) - {c for c in fit["coef"] if c[:2] in ("ar", "ma") or c[:3] in ("sar", "sma")}
        if extra - {"intercept", "drift"}:
            raise NotUpdatable(f"ARIMA with regressors ({', '.join(sorted(extra - {'intercept', 'drift'}))})")
        mod = fit["model"]
        return cls(mod["phi"], mod["theta"], mod["delta"], mod["a"], mod["P"], fit["coef"].get("intercept", 0.0),
                   fit["coef"].get("drift", 0.0), fit["sigma2"], len(np.asarray(y)))

    def fork(self) -> Self:
        ahead = self.shallow_copy()  # update changes `a` and `P` in place (arima_like); the rest is only read
        ahead.a, ahead.P = self.a.copy(), self.P.copy()
        return ahead

    def update(self, values: Sequence[float]) -> None:
        from statsforecast.arima import arima_like

        y = np.asarray(values, dtype=float)
        if not len(y):
            return
        steps = np.arange(self.n + 1, self.n + len(y) + 1, dtype=float)
        x = y - self.intercept - self.drift * steps
        T, V = self.mod["T"], self.mod["V"]
        # arima_like takes its first step's prediction covariance as Pn (at the fit's start, the prior): here the
        # prediction from the last filtered state, so the steps go on as if the filter had never stopped.
        Pn = np.ascontiguousarray(T @ self.P @ T.T + V)
        arima_like(x, self.phi, self.theta, self.delta, self.a, self.P, Pn, 0, False)  # a, P updated in place
        self.n += len(y)

    def _predict(self, h: int, levels: tuple[int, ...]) -> Prediction:
        rows, noise = self._ahead_rows(h)
        mean = rows @ self.a + self.intercept + self.drift * np.arange(self.n + 1, self.n + h + 1)
        if not levels:
            return Prediction(mean)
        var = noise + np.einsum("lr,rs,ls->l", rows, self.P, rows)
        return normal_intervals(mean, np.sqrt(var * self.sigma2), levels)

    def _ahead_rows(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        """statsforecast's `kalman_forecast` (a ← T a, P ← T P T' + V; step l's mean Z·a, variance h + Z'PZ) in
        closed form: step l's mean is r_l·a and its variance r_l P r_l' + Σ_{j≤l} (Z'T^j) V (Z'T^j)' + h for
        the rows r_l = Z'T^(l+1), which depend on the coefficients only: computed once per h (shared by forks).
        Equal to kalman_forecast's answer within 1e-12 relative (other rounding; tests)."""
        cached = self._rows.get(h)
        if cached is None:
            T, V, Z = self.mod["T"], self.mod["V"], np.asarray(self.mod["Z"], dtype=float)
            rows, noise, power, total = np.empty((h, len(Z))), np.empty(h), Z, float(self.mod["h"])
            for step in range(h):
                total += power @ V @ power  # (Z'T^step) V (Z'T^step)'
                power = power @ T
                rows[step], noise[step] = power, total
            cached = self._rows[h] = (rows, noise)
        return cached

    def state(self) -> dict[str, Any]:
        return {"phi": self.phi.tolist(), "theta": self.theta.tolist(), "delta": self.delta.tolist(),
                "a": pack(self.a), "P": pack(self.P), "intercept": self.intercept, "drift": self.drift,
                "sigma2": self.sigma2, "n": self.n}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        a = unpack(state["a"])
        return cls(np.asarray(state["phi"]), np.asarray(state["theta"]), np.asarray(state["delta"]), a,
                   unpack(state["P"], (len(a), len(a))), state["intercept"], state["drift"], state["sigma2"],
                   state["n"])
