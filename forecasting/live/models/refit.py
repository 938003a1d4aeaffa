"""Models that cannot fold a point into a fitted state (fbprophet; exponentialsmoothing, whose statsmodels fit has
no cheap fixed-parameter step here; arima with regressors): refit on the last `TAIL_POINTS` points every
`REFIT_EVERY` new points, counted from the first fit whatever the batches (a refit belongs in the predictor pool,
never on a stream's loop); in between, the last fit's forecast moves on (it forecasts `h + k` steps and drops the
`k` already observed), so between refits a forecast ignores the new values. The state is the tail's values and
its last timestamp: resuming refits on them (deterministic: exponential smoothing's intervals use a fixed seed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from forecasting.live.models.base import LiveModel, pack, unpack
from forecasting.models import get_model_class
from forecasting.models.base import LEVELS, ForecastModel, Prediction

TAIL_POINTS = 1_000
REFIT_EVERY = 50
_KEPT = TAIL_POINTS + REFIT_EVERY


class LiveRefit(LiveModel):
    kind = "refit"

    def __init__(self, name: str, season_length: int, options: dict[str, Any], tail: np.ndarray,
                 end: pd.Timestamp, freq: str, since_fit: int, model: ForecastModel | None = None) -> None:
        self.name, self.season_length, self.options = name, season_length, options
        # The points of the last fit and those since, so that a resumed state refits on the same points.
        self.tail, self.end, self.freq = np.asarray(tail, dtype=float)[-_KEPT:], pd.Timestamp(end), freq
        self.since_fit, self.model = since_fit, model

    @classmethod
    def from_fitted(cls, model: ForecastModel, y: np.ndarray | pd.Series) -> Self:
        if not isinstance(y, pd.Series):
            raise ValueError("a refitted model needs its training series with its dates")
        index = pd.DatetimeIndex(y.index)
        fitted_on_tail = len(y) <= TAIL_POINTS  # else the first refit is of the tail
        return cls(model.name, model.season_length, dict(model.options), y.to_numpy(dtype=float), index[-1],
                   index.freqstr, 0, model if fitted_on_tail else None)

    def update(self, values: Sequence[float]) -> None:
        if not len(values):
            return
        self.tail = np.concatenate([self.tail, np.asarray(values, dtype=float)])[-_KEPT:]
        self.end = self.end + len(values) * pd.tseries.frequencies.to_offset(self.freq)
        # Refits fall every REFIT_EVERY points counted from the first fit, wherever the batches end, so a
        # forecast depends on the points folded only (a restart or a replay batches them differently).
        crossed = (self.since_fit + len(values)) // REFIT_EVERY
        self.since_fit = (self.since_fit + len(values)) % REFIT_EVERY
        if crossed:
            self.model = None  # refit on the last TAIL_POINTS up to the last boundary, at the next forecast

    def _fit_series(self) -> pd.Series:
        """The last TAIL_POINTS points as of the last fit (`since_fit` points ago)."""
        index = pd.date_range(end=self.end, periods=len(self.tail), freq=self.freq)
        points = pd.Series(self.tail, index=index)
        return points.iloc[: len(points) - self.since_fit].iloc[-TAIL_POINTS:]

    def _predict(self, h: int, levels: tuple[int, ...] = LEVELS) -> Prediction:
        import warnings

        if self.model is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cls = get_model_class(self.name)
                self.model = cls(season_length=self.season_length, options=self.options).fit(self._fit_series())
        k = self.since_fit
        raw = self.model.predict(h + k, levels)
        intervals = {lv: (lo[k:], hi[k:]) for lv, (lo, hi) in raw.intervals.items()} if raw.intervals else None
        return Prediction(raw.mean[k:], intervals)

    def forecast(self, h: int, levels: tuple[int, ...] = LEVELS, tail: Sequence[float] = ()) -> Prediction:
        # A provisional tail is only counted as steps already passed: no refit for points that may change.
        if not len(tail):
            return self._predict(h, levels)
        raw = self._predict(h + len(tail), levels)
        k = len(tail)
        intervals = {lv: (lo[k:], hi[k:]) for lv, (lo, hi) in raw.intervals.items()} if raw.intervals else None
        return Prediction(raw.mean[k:], intervals)

    def state(self) -> dict[str, Any]:
        return {"name": self.name, "season_length": self.season_length, "options": self.options,
                "tail": pack(self.tail), "end": self.end.isoformat(), "freq": self.freq, "since_fit": self.since_fit}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        # The fit is not in the state: resuming refits on the points of the last fit (the same forecasts).
        return cls(state["name"], state["season_length"], state["options"], unpack(state["tail"]),
                   pd.Timestamp(state["end"]), state["freq"], int(state["since_fit"]))
