"""Models that cannot fold a point into a fitted state (fbprophet; exponentialsmoothing, whose statsmodels fit
has no cheap fixed-parameter step here; arima with regressors): refit on the last `TAIL_POINTS` points at every
`REFIT_EVERY`-th point folded in; in between, the last fit's forecast moves on (it forecasts `h + k` steps and
drops the `k` already observed), so between refits a forecast ignores the new values.

Where a refit takes effect is defined by the data, never by when a refit finished: after `folded` points the
forecast uses the fit of the *due* point, `folded - folded % REFIT_EVERY` points after the first fit, made on
the last `TAIL_POINTS` points up to it. So the same points give the same forecast however they were batched or
however slow the refit was, and a revision equals a from-scratch fit on those points.

A refit is a fit: the live service runs it in its unit pool, never on a stream's event loop. `needs_fit()` says
the due fit is missing; `fit_ahead(steps)` (in a worker, on a copy loaded from the state) fits it and forecasts
`steps` ahead once; `install` takes that answer, and forecasts until the next due point are slices of it (no
model call on the loop). Forecasting a prefix of a longer horizon gives the same values (statsmodels' simulated
intervals draw step by step from a fixed seed; prophet samples its intervals from numpy's global generator,
which `fit_ahead` seeds so that a replay gives the same intervals). Without an installed answer, `forecast` fits
in place (a direct call: tests, tools). The state is the tail's values, its last timestamp and the count folded:
resuming refits on the same points."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from forecasting.live.models.base import LiveModel, pack, unpack
from forecasting.models import get_model_class
from forecasting.models.base import LEVELS, ForecastModel, Prediction

TAIL_POINTS = 1_000
REFIT_EVERY = 50
_KEPT = TAIL_POINTS + REFIT_EVERY
_SEED = 0  # numpy's global generator before a refit's forecast (prophet's interval samples)


@dataclass(frozen=True)
class Ahead:
    """A refit's answer: the forecast from the due point `fit_at`, `len(prediction.mean)` steps ahead."""

    fit_at: int
    prediction: Prediction


class LiveRefit(LiveModel):
    kind = "refit"

    def __init__(self, name: str, season_length: int, options: dict[str, Any], tail: np.ndarray,
                 end: pd.Timestamp, freq: str, folded: int, model: ForecastModel | None = None) -> None:
        self.name, self.season_length, self.options = name, season_length, options
        # The points of the due fit and those since, so that a resumed state refits on the same points.
        self.tail, self.end, self.freq = np.asarray(tail, dtype=float)[-_KEPT:], pd.Timestamp(end), freq
        self.folded = folded  # points folded in since the first fit
        self.model, self.model_at = model, 0  # a fit in hand, and the due point it is the fit of
        self.ahead: Ahead | None = None

    @classmethod
    def from_fitted(cls, model: ForecastModel, y: np.ndarray | pd.Series) -> Self:
        if not isinstance(y, pd.Series):
            raise ValueError("a refitted model needs its training series with its dates")
        index = pd.DatetimeIndex(y.index)
        fitted_on_tail = len(y) <= TAIL_POINTS  # else the first refit is of the tail
        return cls(model.name, model.season_length, dict(model.options), y.to_numpy(dtype=float), index[-1],
                   index.freqstr, 0, model if fitted_on_tail else None)

    @property
    def due(self) -> int:
        """The point whose fit the forecast uses: the last multiple of REFIT_EVERY folded in."""
        return self.folded - self.folded % REFIT_EVERY

    def update(self, values: Sequence[float]) -> None:
        if not len(values):
            return
        self.tail = np.concatenate([self.tail, np.asarray(values, dtype=float)])[-_KEPT:]
        self.end = self.end + len(values) * pd.tseries.frequencies.to_offset(self.freq)
        self.folded += len(values)

    def needs_fit(self) -> bool:
        """True when no installed answer is of the due point: a refit is due (or a resumed state's first)."""
        return self.ahead is None or self.ahead.fit_at != self.due

    def _fit_series(self) -> pd.Series:
        """The last TAIL_POINTS points as of the due point (`folded - due` points ago)."""
        index = pd.date_range(end=self.end, periods=len(self.tail), freq=self.freq)
        points = pd.Series(self.tail, index=index)
        return points.iloc[: len(points) - (self.folded - self.due)].iloc[-TAIL_POINTS:]

    def _fit(self) -> ForecastModel:
        """The due point's fit: the one in hand, or a new one."""
        import warnings

        if self.model is None or self.model_at != self.due:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cls = get_model_class(self.name)
                self.model = cls(season_length=self.season_length, options=self.options).fit(self._fit_series())
            self.model_at = self.due
        return self.model

    def fit_ahead(self, steps: int, levels: tuple[int, ...] = LEVELS) -> Ahead:
        """The refit's work (in a worker process): the due point's fit, forecast `steps` ahead."""
        model = self._fit()
        np.random.seed(_SEED)  # noqa: NPY002 - prophet draws its interval samples from the global generator
        return Ahead(self.due, model.predict(steps, levels))

    def install(self, ahead: Ahead) -> bool:
        """Take a refit's answer; False (ignored) when it is not of the due point any more."""
        if ahead.fit_at != self.due:
            return False
        self.ahead, self.model = ahead, None  # the answer is all the forecasts need until the next due point
        return True

    def _predict(self, h: int, levels: tuple[int, ...] = LEVELS) -> Prediction:
        k = self.folded - self.due
        if self.ahead is not None and self.ahead.fit_at == self.due and len(self.ahead.prediction.mean) >= h + k:
            raw = self.ahead.prediction
        else:  # a direct call: fitted here, as the pool would (seeded the same way)
            raw = self.fit_ahead(h + k, levels).prediction
        intervals = ({lv: (lo[k:k + h], hi[k:k + h]) for lv, (lo, hi) in raw.intervals.items() if lv in levels}
                     if raw.intervals and levels else None)
        return Prediction(raw.mean[k:k + h], intervals)

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
                "tail": pack(self.tail), "end": self.end.isoformat(), "freq": self.freq, "folded": self.folded}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        # The fit is not in the state: resuming refits on the points of the due fit (the same forecasts).
        return cls(state["name"], state["season_length"], state["options"], unpack(state["tail"]),
                   pd.Timestamp(state["end"]), state["freq"], int(state["folded"]))
