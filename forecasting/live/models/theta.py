"""theta: statsforecast's `forward` (the fitted alpha, theta, initial level and model type, no search) over a
bounded tail of the last `TAIL_POINTS` points, on each forecast. Theta's state holds the mean of the whole
series and its seasonal decomposition is of the whole series, so there is no exact O(1) step; on the bounded
tail the cost is flat in the stream's length (O(TAIL_POINTS)) and the forecast equals a from-scratch forecast
with those parameters on those points (exactly: the same computation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from forecasting.live.models.base import LiveModel, pack, unpack
from forecasting.models.base import ForecastModel, Prediction

TAIL_POINTS = 1_000


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

    def update(self, values: Sequence[float]) -> None:
        if len(values):
            self.tail = np.concatenate([self.tail, np.asarray(values, dtype=float)])[-TAIL_POINTS:]

    def _predict(self, h: int, levels: tuple[int, ...]) -> Prediction:
        from statsforecast.theta import forecast_theta, forward_theta

        p = self.params
        fitted = {"m": p["m"], "modeltype": p["modeltype"],
                  "par": {"alpha": p["alpha"], "theta": p["theta"], "initial_smoothed": p["initial_smoothed"]}}
        out = forecast_theta(forward_theta(fitted, self.tail), h, level=list(levels) if levels else None)
        mean = np.asarray(out["mean"], dtype=float)
        if not levels:
            return Prediction(mean)
        return Prediction(mean, {lv: (np.asarray(out[f"lo-{lv}"], dtype=float),
                                      np.asarray(out[f"hi-{lv}"], dtype=float)) for lv in levels})

    def state(self) -> dict[str, Any]:
        return {"params": self.params, "tail": pack(self.tail)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        return cls(state["params"], unpack(state["tail"]))
