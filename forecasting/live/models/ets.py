"""autoets: statsforecast's ETS state equations (its own `pegelsresid_C`) run from the last state over the new
points only, with the fitted smoothing parameters; sigma² is kept as the running sum of squared errors over
n - n_params - 1, exactly as statsforecast's `forward` recomputes it over the whole series. O(1) a point
(one state vector of 1 + trend + season values)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from forecasting.live.models.base import LiveModel, cache_normal_quantiles
from forecasting.models.base import ForecastModel, Prediction

_NMSE = 3  # statsforecast's default: the multi-step MSE horizon of the fit (not used for the forecast)


class LiveETS(LiveModel):
    kind = "autoets"

    def __init__(self, fitted: dict[str, Any], state: np.ndarray, ssq: float, n: int) -> None:
        # `fitted`: what the equations and intervals need of statsforecast's model dict (small values only)
        self.fitted, self.x, self.ssq, self.n = fitted, np.asarray(state, dtype=float), float(ssq), int(n)

    @classmethod
    def from_fitted(cls, model: ForecastModel, y: np.ndarray) -> Self:
        mod = model._model.model_  # type: ignore[attr-defined]
        fitted = {"components": str(mod["components"]), "m": int(mod["m"]), "par": [float(p) for p in mod["par"]],
                  "n_params": int(mod["n_params"]), "distribution": str(mod.get("distribution", "normal"))}
        e2 = np.asarray(mod["residuals"], dtype=float) ** 2
        return cls(fitted, np.asarray(mod["states"][-1], dtype=float), float(e2[np.isfinite(e2)].sum()),
                   len(np.asarray(y)))

    def fork(self) -> Self:
        return copy.copy(self)  # update rebinds `x`, `ssq` and `n`; `fitted` is only read

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

    def _model_dict(self) -> dict[str, Any]:
        return {**self.fitted, "par": np.asarray(self.fitted["par"]), "states": self.x[None, :],
                "sigma2": self.ssq / (self.n - self.fitted["n_params"] - 1),
                "residuals": np.empty(0), "fitted": np.empty(0)}

    def _predict(self, h: int, levels: tuple[int, ...]) -> Prediction:
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
