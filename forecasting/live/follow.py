"""One live series from its first observation to its revisions: the broker-free state machine the live service
drives (live/service.py), one `LiveSeries` per series of a standing request.

1. Observations fold into the series' `Window`; the final points it gives are counted.
2. At `min_points` final points the series is *ready*: `snapshot` holds exactly those points, taken at the
   observation that reached the count (never at a batch boundary), so a replay or a restart takes the same
   snapshot. The service sends it to the normal TIMEX selection (the fan-out).
3. Once the selection's choice is known, `fit_live` (in a process pool) fits the chosen model and
   transformation on the snapshot's last window + test points, as the core's final refit does
   (forecasting.units), and `start` wraps it with its live model.
4. From then on `revise` folds the final points taken since the last revision (transformed as the fit's data
   were), forecasts the horizon after the provisional tail, inverts the transformation, clips and rounds as a
   CSV's forecast (`adjusted`), and numbers the revision with `window.included`: the count of observations
   folded in, which only grows and is the same on a replay. Nothing here reads a clock.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecasting.config import TimexConfig, config_from_json
from forecasting.live.models import LiveModel, adjusted, live_model, load
from forecasting.live.observations import Observation
from forecasting.live.params import LiveParameters
from forecasting.live.window import Added, Window
from forecasting.models import get_model_class
from forecasting.models.base import LEVELS, Prediction
from forecasting.ns_range import future_index
from forecasting.seasonality import season_length
from forecasting.series import to_wire
from forecasting.transformations import Transformation, make_transformation
from forecasting.units import model_options

MAX_ACTUALS = 1_000  # actuals a revision carries at most (after a long selection, the last ones)


@dataclass(frozen=True)
class Choice:
    """What the selection chose for a series (a best-models record's model, transformation and window)."""

    model: str
    transformation: str
    window: int
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, best: dict[str, Any]) -> Choice | None:
        """The choice of a BestModel record; None when every unit failed (no model)."""
        if not best.get("model"):
            return None
        model, transformation = best["model"], best.get("transformation") or "none"
        window = int(best.get("window") or 0)
        row = next((r for r in best.get("comparison") or () if (r["model"], r["transformation"], r["window"])
                    == (model, transformation, window)), None)
        return cls(model, transformation, window, dict(row["params"]) if row else {})


@dataclass(frozen=True)
class Fitted:
    """`fit_live`'s answer: the live model's state (bytes, cheap to send between processes) and the fitted
    transformation."""

    state: bytes
    transformation: Transformation


def fit_live(config_json: str, snapshot: pd.Series, choice: Choice) -> Fitted:
    """Fit `choice` on the snapshot's last window + test points (the core's final refit,
    forecasting.units._final_forecast), as a live model. Runs in a worker process."""
    config = config_from_json(config_json)
    test = config.model_parameters.test_size(len(snapshot))
    data = snapshot.iloc[-(choice.window + test):] if choice.window else snapshot
    transformation = make_transformation(choice.transformation).fit(data.to_numpy())
    transformed = pd.Series(transformation.apply(data.to_numpy()), index=data.index, name=data.name)
    cls = get_model_class(choice.model)
    model = cls(season_length=season_length(transformed.index.freqstr), options=model_options(config, choice.model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(transformed)
        live = live_model(model, transformed)
    return Fitted(live.to_bytes(), transformation)


class LiveSeries:
    """One series of a standing request (see the module's docstring)."""

    def __init__(self, name: str, config: TimexConfig, live: LiveParameters, frequency: str) -> None:
        self.name, self.config, self.min_points = name, config, live.min_points
        self.window = Window(frequency, live.window_points, live.lateness_points(frequency), name)
        self.final_points = 0  # final points taken from the window in all
        self.pending: list[tuple[pd.Timestamp, float]] = []  # final points not folded into a model yet
        self.snapshot: pd.Series | None = None
        self.choice: Choice | None = None
        self.model: LiveModel | None = None
        self.transformation: Transformation | None = None
        self.revised_at = 0  # `window.included` at the last revision

    def seed(self, history: pd.Series) -> bool:
        """A CSV's history before any observation; True when it makes the series ready."""
        self.window.seed(history)
        return self._take()

    def add(self, obs: Observation) -> tuple[Added, bool]:
        """Fold one observation in: how it was taken, and True when this one made the series ready."""
        added = self.window.add(obs)
        return added, self._take() if added is Added.INCLUDED else False

    def _take(self) -> bool:
        taken = self.window.take_final()
        self.final_points += len(taken)
        self.pending += taken
        if self.snapshot is None and self.final_points >= self.min_points:
            index = pd.DatetimeIndex([stamp for stamp, _ in self.pending], freq=self.window.offset)
            self.snapshot = pd.Series([v for _, v in self.pending], index=index, dtype=float, name=self.name)
            self.pending = []
            return True
        if self.snapshot is not None and self.model is None and len(self.pending) > self.window.window_points:
            self.pending = self.pending[-self.window.window_points:]  # bounded while the selection runs
        return False

    def start(self, choice: Choice, fitted: Fitted) -> None:
        self.choice, self.transformation = choice, fitted.transformation
        self.model = load(fitted.state)

    @property
    def waiting_for(self) -> int:
        """Final points still missing before the selection."""
        return max(0, self.min_points - self.final_points)

    def revise(self) -> dict[str, Any] | None:
        """The next revision's fields (a ForecastRevision without request_id), or None: no model yet, or
        nothing new since the last revision."""
        if self.model is None or self.choice is None or self.transformation is None:
            return None
        folded = self.pending[-MAX_ACTUALS:]  # the actuals the revision carries (readers draw them)
        if self.pending:
            self.model.update(self.transformation.apply(np.array([v for _, v in self.pending], dtype=float)))
            self.pending = []
        included = self.window.included
        if included == self.revised_at:
            return None
        h = self.config.model_parameters.prediction_lags
        tail = self.window.provisional()
        raw = self.model.forecast(h, LEVELS, tail=self.transformation.apply(tail.to_numpy(dtype=float)))
        inverse = self.transformation.inverse
        intervals = {lv: (inverse(lo), inverse(hi)) for lv, (lo, hi) in (raw.intervals or {}).items()} or None
        pred = adjusted(Prediction(inverse(raw.mean), intervals), self.config, self.name)
        series = self.window.series()
        stamps = to_wire(pd.Series(np.zeros(h), index=future_index(pd.DatetimeIndex(series.index), h)))[0]
        forecast: dict[str, Any] = {"timestamps": stamps, "yhat": [float(v) for v in pred.mean]}
        for lv in LEVELS:
            lo_hi = (pred.intervals or {}).get(lv)
            forecast[f"lower_{lv}"] = [float(v) for v in lo_hi[0]] if lo_hi else None
            forecast[f"upper_{lv}"] = [float(v) for v in lo_hi[1]] if lo_hi else None
        points, self.revised_at = included - self.revised_at, included
        last = self.window.last_timestamp
        return {"series": self.name, "revision": included, "last_timestamp": last.isoformat() if last else "",
                "points": points, "forecast": forecast, "model": self.choice.model,
                "transformation": self.choice.transformation, "window": self.choice.window,
                "params": self.choice.params,
                "actual_timestamps": [stamp.isoformat() for stamp, _ in folded] + [t.isoformat() for t in tail.index],
                "actual_values": [float(v) for _, v in folded] + [float(v) for v in tail]}
