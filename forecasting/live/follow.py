"""One live series from its first observation to its revisions: the broker-free state machine the live service
drives (live/service.py), one `LiveSeries` per series of a standing request.

1. Observations fold into the series' `Window`; the final points it gives are counted.
2. At `min_points` final points the series is *ready*: `snapshot` holds exactly those points, taken at the
   observation that reached the count (never at a batch boundary), so a replay or a restart takes the same
   snapshot. The service sends it to the normal TIMEX selection (the fan-out).
3. Once the selection's choice is known, `fit_live` (in a process pool) fits the chosen model and
   transformation on the snapshot's last window + test points, as the core's final refit does
   (forecasting.units), and `start` wraps it with its live model.
4. From then on `fold` folds the final points taken since the last revision into the model (transformed as
   the fit's data were: cheap, never a fit). A refit kind (forecasting.live.models.refit) may then need the fit
   of its due point: `refit_work` gives that work for the pool (`refit_live`), `refitted` installs the answer,
   and until then the series is not revised (its points fold into the next revision). `revise` forecasts
   the horizon after the provisional tail, inverts the transformation, clips and rounds as a CSV's forecast
   (forecasting.units' `_adjust_by`), and numbers the revision with `window.included`: the count of observations
   folded in, which only grows and is the same on a replay. Nothing here reads a clock.
5. `fold` takes the final points one by one: each is scored against the forecasts made before it, then the
   forecast after it is recorded (forecasting.live.accuracy; a refit kind records one only where its due fit is
   in hand, never fitting here), and a drift or schedule may trigger a re-selection
   (forecasting.live.reselect: `take_trigger`, then `resolve` and, for a new model, `switch`). While one is
   pending the series publishes no revision, so every revision above the trigger uses its outcome.
"""

from __future__ import annotations

import math
import struct
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.offsets import DateOffset

from forecasting.config import TimexConfig, config_from_json
from forecasting.live.accuracy import Scorer, threshold
from forecasting.live.models import LiveModel, live_model, load
from forecasting.live.models.refit import REFIT_EVERY, Ahead, LiveRefit
from forecasting.live.observations import Observation
from forecasting.live.params import LiveParameters, live_request
from forecasting.live.reselect import DRIFT, Decision, Trigger, can_switch, decide, due, switch_record
from forecasting.live.window import Added, Window
from forecasting.metrics import score
from forecasting.models import get_model_class
from forecasting.models.base import LEVELS, Prediction
from forecasting.ns_range import future_index
from forecasting.seasonality import season_length
from forecasting.series import wire_timestamps
from forecasting.transformations import Transformation, make_transformation
from forecasting.units import _adjust_by, _bounds, model_options

MAX_ACTUALS = 1_000  # actuals a revision carries at most (after a long selection, the last ones)


@dataclass(frozen=True)
class Choice:
    """What the selection chose for a series (a best-models record's model, transformation and window)."""

    model: str
    transformation: str
    window: int
    params: dict[str, str] = field(default_factory=dict)
    validation_error: float | None = None  # the main estimator's error it was chosen with (None: unknown)

    @classmethod
    def of(cls, best: dict[str, Any]) -> Choice | None:
        """The choice of a BestModel record; None when every unit failed (no model)."""
        if not best.get("model"):
            return None
        model, transformation = best["model"], best.get("transformation") or "none"
        window = int(best.get("window") or 0)
        row = next((r for r in best.get("comparison") or () if (r["model"], r["transformation"], r["window"])
                    == (model, transformation, window)), None)
        error = score(best.get("metrics") or {}, best["main_accuracy_estimator"]) if best.get(
            "main_accuracy_estimator") else math.inf
        return cls(model, transformation, window, dict(row["params"]) if row else {},
                   None if math.isinf(error) else error)


@dataclass(frozen=True)
class Fitted:
    """`fit_live`'s answer: the live model's state (bytes, cheap to send between processes) and the fitted
    transformation."""

    state: bytes
    transformation: Transformation
    ahead: Ahead | None = None  # a refit kind's forecast from this fit (see forecasting.live.models.refit)


@dataclass(frozen=True)
class RefitWork:
    """A refit kind's due fit, to be done in the pool: its state and how far ahead to forecast."""

    state: bytes
    steps: int


def ahead_steps(horizon: int, lateness_points: int) -> int:
    """How far ahead a refit forecasts: the horizon after up to REFIT_EVERY - 1 points folded since the due
    point and a provisional tail of at most `lateness_points + 1` buckets, so every revision until the next due
    point is a slice of it."""
    return horizon + REFIT_EVERY + lateness_points


def refit_live(work: RefitWork) -> Ahead:
    """A refit kind's due fit and its forecast (`LiveRefit.fit_ahead`). Runs in a worker process."""
    model = load(work.state)
    assert isinstance(model, LiveRefit), "only a refit kind is refitted"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit_ahead(work.steps)


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
        ahead = None
        if isinstance(live, LiveRefit):  # its first forecasts too, while the fit is in hand
            params = live_request(config)
            lateness = params.live.lateness_points(config.input_parameters.frequency or "") if params else 0
            ahead = live.fit_ahead(ahead_steps(config.model_parameters.prediction_lags, lateness))
    return Fitted(live.to_bytes(), transformation, ahead)


class LiveSeries:
    """One series of a standing request (see the module's docstring)."""

    def __init__(self, name: str, config: TimexConfig, live: LiveParameters, frequency: str) -> None:
        self.name, self.config, self.min_points, self.live = name, config, live.min_points, live
        self.window = Window(frequency, live.window_points, live.lateness_points(frequency), name)
        self.final_points = 0  # final points taken from the window in all
        # final points not folded into a model yet, with the observation count when each became final
        self.pending: list[tuple[pd.Timestamp, float, int]] = []
        self.snapshot: pd.Series | None = None
        self.choice: Choice | None = None
        self.model: LiveModel | None = None
        self.transformation: Transformation | None = None
        self.revised_at = 0  # `window.included` at the last revision
        self.selected_at = 0  # `window.included` when the current model's selection window ended
        self.selected_position = 0  # the number of the final point that window ends with
        self.folded = 0  # the number of the last final point folded into the model
        self.scorer: Scorer | None = None
        self.recent: deque[tuple[pd.Timestamp, float]] = deque(maxlen=live.min_points)  # a re-selection's window
        self.schedule_from = 0  # the final point the schedule counts from
        self.can_switch = can_switch(config, live.min_points)  # else no re-selection is asked for
        self.reselection: Trigger | None = None  # a re-selection whose outcome is pending
        self._new_trigger: Trigger | None = None  # not taken by the service yet
        self.since_trigger: list[tuple[pd.Timestamp, float, int]] = []  # final points after the pending trigger
        self.switched: dict[str, Any] | None = None  # why the current model replaced the one before (if it did)
        self.unsent: list[tuple[pd.Timestamp, float]] = []  # final points folded since the last revision
        self._ahead: _Ahead | None = None  # the last revision's model after its provisional point
        self._bounds = _bounds(config, name)  # min/max values and rounding (forecasting.units._adjust's)

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
        included = self.window.included
        self.pending += [(stamp, value, included) for stamp, value in taken]
        if self.snapshot is None and self.final_points >= self.min_points:
            index = pd.DatetimeIndex([stamp for stamp, _, _ in self.pending], freq=self.window.offset)
            self.snapshot = pd.Series([v for _, v, _ in self.pending], index=index, dtype=float, name=self.name)
            self.pending = []
            self.selected_at, self.selected_position = included, self.final_points
            return True
        if self.snapshot is not None and self.model is None and len(self.pending) > self.window.window_points:
            self.pending = self.pending[-self.window.window_points:]  # bounded while the selection runs
        return False

    def start(self, choice: Choice, fitted: Fitted) -> None:
        assert self.snapshot is not None
        self._install(choice, fitted)
        self.folded = self.schedule_from = self.selected_position
        self.recent.extend(zip(self.snapshot.index, self.snapshot.to_numpy(dtype=float), strict=True))
        self._score_from_here(len(self.snapshot))

    def _install(self, choice: Choice, fitted: Fitted) -> None:
        self.choice, self.transformation, self._ahead = choice, fitted.transformation, None
        self.model = load(fitted.state)
        if fitted.ahead is not None and isinstance(self.model, LiveRefit):
            self.model.install(fitted.ahead)

    def _score_from_here(self, selected_on: int) -> None:
        """A new scorer for the current model (chosen on `selected_on` points: its validation span), with its
        forecast after the last folded point."""
        mp = self.config.model_parameters
        span = mp.test_size(selected_on)
        self.scorer = Scorer(mp.main_accuracy_estimator, mp.prediction_lags, span, self.live.accuracy_window,
                             season_length(self.window.freq))
        self._record_forecast()

    def _record_forecast(self, mean: np.ndarray | None = None) -> None:
        """The forecast after the point just folded, for the scorer; `mean`: the model's, already in hand."""
        assert self.model is not None and self.transformation is not None and self.scorer is not None
        if self._fit_due():
            return  # its due fit is the pool's work, never done here: no forecast from this point to score
        if mean is None:
            mean = self.model.forecast(self.scorer.steps, ()).mean
        self.scorer.forecast(self.folded + 1, _adjust_by(self.transformation.inverse(mean), self._bounds))

    def _threshold(self) -> float | None:
        if self.live.reselect_patience <= 0 or self.choice is None:
            return None  # no drift to count: the rolling error is computed per revision only
        return threshold(self.choice.validation_error, self.live.reselect_factor)

    def decision(self, trigger: Trigger, answer: dict[str, Any]) -> Decision:
        """`decide` for the current choice on a re-selection's answer; a drift must show on its window too (the
        old choice's error there above the drift threshold)."""
        assert self.choice is not None
        old = self.choice
        return decide(old.model, old.transformation, old.window, answer,
                      self._threshold() if trigger.reason == DRIFT else None)

    def take_trigger(self) -> Trigger | None:
        """A re-selection just triggered (once): the service fans its snapshot out, or knows its outcome."""
        trigger, self._new_trigger = self._new_trigger, None
        return trigger

    def resolve(self, decision: Decision) -> bool:
        """The pending re-selection's outcome; True when the new choice must be fitted (on the trigger's
        snapshot) and then `switch`ed to; False: the model stays and revisions go on."""
        if self.reselection is None:
            return False
        if decision.switch and len(self.since_trigger) <= self.window.window_points:
            return True
        self.schedule_from, self.reselection, self.since_trigger = self.reselection.position, None, []
        assert self.scorer is not None
        self.scorer.over = 0
        return False

    def switch(self, choice: Choice, fitted: Fitted, decision: Decision) -> None:
        """The new choice, fitted on the trigger's snapshot: it folds every final point after the trigger (at the
        next revision), and the accuracy starts again."""
        trigger = self.reselection
        assert trigger is not None and self.choice is not None
        self.switched = switch_record(trigger, self.choice.model, self.choice.transformation, self.choice.window,
                                      decision)
        self._install(choice, fitted)
        self.folded = self.schedule_from = self.selected_position = trigger.position
        self.selected_at = trigger.triggered_at
        self.pending = self.since_trigger + self.pending
        self.reselection, self.since_trigger = None, []
        self.recent.clear()
        self.recent.extend(zip(trigger.snapshot.index, trigger.snapshot.to_numpy(dtype=float), strict=True))
        self._score_from_here(len(trigger.snapshot))

    @property
    def waiting_for(self) -> int:
        """Final points still missing before the selection."""
        return max(0, self.min_points - self.final_points)

    def fold(self) -> None:
        """The final points taken since the last fold, into the model one by one (updates: never a fit): each
        scored, maybe triggering a re-selection, then the forecast after it recorded."""
        if self.model is None or self.transformation is None or not self.pending:
            return
        points, self.pending = self.pending, []
        assert self.scorer is not None
        # as Python floats (iterating the array would make a numpy scalar of each)
        transformed = self.transformation.apply(np.array([v for _, v, _ in points], dtype=float)).tolist()
        limit = self._threshold()
        ahead, self._ahead = self._ahead, None
        for (stamp, value, included), model_value in zip(points, transformed, strict=True):
            self.folded += 1
            self.scorer.actual(self.folded, value, limit)
            self.recent.append((stamp, value))
            self.unsent.append((stamp, float(value)))
            if len(self.unsent) > 2 * MAX_ACTUALS:  # no revision for long (a re-selection): keep the last ones
                del self.unsent[:-MAX_ACTUALS]
            if self.reselection is not None:
                if len(self.since_trigger) <= self.window.window_points:
                    self.since_trigger.append((stamp, value, included))
            elif self.can_switch and (reason := due(self.folded, self.schedule_from, self.scorer.over,
                                                    self.live.reselect_patience, self.live.reselect_every)):
                snapshot = pd.Series([v for _, v in self.recent], name=self.name, dtype=float,
                                     index=pd.DatetimeIndex([t for t, _ in self.recent], freq=self.window.offset))
                self.reselection = self._new_trigger = Trigger(reason, included, self.folded, snapshot,
                                                               self.scorer.error())
                self.since_trigger = []
            if ahead is not None and ahead.stands_for(self.model, self.folded - 1, float(model_value)):
                # the last revision's provisional point, now final with the same value: that forecast's model
                # is this one updated (the same steps from the same state), and its mean the one to record
                self.model = ahead.model
                self._record_forecast(ahead.mean)
            else:
                self.model.update([float(model_value)])
                self._record_forecast()
            ahead = None

    def _forecast(self, h: int, tail: np.ndarray) -> Prediction:
        """The revision's forecast after the provisional `tail` (model values). With one provisional point (no
        lateness: the newest bucket), the model after it is kept: if that point becomes final unchanged, `fold`
        takes that model and its mean instead of updating and forecasting again (half a point's forecasting)."""
        assert self.model is not None and self.scorer is not None
        if len(tail) != 1 or isinstance(self.model, LiveRefit):
            return self.model.forecast(h, LEVELS, tail=tail)
        ahead = self.model.ahead(tail)
        raw = ahead.forecast(h, LEVELS)
        reusable = self.scorer.steps == h and ahead.mean_is_levels_free()
        self._ahead = _Ahead(self.model, self.folded, float(tail[0]), ahead, raw.mean.copy() if reusable else None)
        return raw

    def idle(self) -> bool:
        """Whether a revise pass has nothing to do here: no final point to fold, no observation since the last
        revision, no trigger to hand over and no due fit (then `fold`, `refit_work`, `revise` and `take_trigger`
        would all do nothing). A pass looks at every series of its request and most have nothing new: this check
        costs a fraction of those four calls."""
        return (not self.pending and self.window.included == self.revised_at and self._new_trigger is None
                and not self._fit_due())

    def _fit_due(self) -> bool:
        """A refit kind whose due fit is not in hand (the pool's work: `refit_work`)."""
        return isinstance(self.model, LiveRefit) and self.model.needs_fit()

    def refit_work(self) -> RefitWork | None:
        """After `fold`: the fit a refit kind needs before its next revision (for the pool), else None."""
        if not self._fit_due():
            return None
        assert self.model is not None
        h = self.config.model_parameters.prediction_lags
        return RefitWork(self.model.to_bytes(), ahead_steps(h, self.window.allowed_lateness))

    def refitted(self, ahead: Ahead) -> bool:
        """A refit's answer from the pool; False when more points made another fit due meanwhile."""
        return isinstance(self.model, LiveRefit) and self.model.install(ahead)

    def revise(self) -> dict[str, Any] | None:
        """The next revision's fields (a ForecastRevision without request_id), or None: no model yet, or
        nothing new since the last revision. A refit kind whose due fit is missing (`refit_work`) fits it here:
        the live service asks `refit_work` first and leaves that fit to its pool."""
        if self.model is None or self.choice is None or self.transformation is None:
            return None
        self.fold()
        included = self.window.included
        if included == self.revised_at or self.reselection is not None:
            return None
        h = self.config.model_parameters.prediction_lags
        tail = self.window.provisional_values()
        raw = self._forecast(h, self.transformation.apply(tail) if len(tail) else tail)
        inverse, bounds = self.transformation.inverse, self._bounds
        # the forecast as a CSV's (inverse, then clipped and rounded: forecasting.units' `_adjust_by`), as lists
        forecast: dict[str, Any] = {"timestamps": self._future_stamps(h),
                                    "yhat": _floats(_adjust_by(inverse(raw.mean), bounds))}
        intervals = raw.intervals or {}
        for lv, lower, upper in _BANDS:
            lo_hi = intervals.get(lv)
            forecast[lower] = _floats(_adjust_by(inverse(lo_hi[0]), bounds)) if lo_hi else None
            forecast[upper] = _floats(_adjust_by(inverse(lo_hi[1]), bounds)) if lo_hi else None
        points, self.revised_at = included - self.revised_at, included
        last = self.window.last_timestamp
        assert self.scorer is not None
        # once each (points folded again after a switch), the last MAX_ACTUALS
        actuals = dict(self.unsent[-MAX_ACTUALS:])
        self.unsent = []
        stamps = [_iso(stamp) for stamp in actuals]
        if len(tail):
            stamps += self._provisional_stamps(len(tail))
        return {"series": self.name, "revision": included, "last_timestamp": _iso(last) if last else "",
                "points": points, "forecast": forecast, "model": self.choice.model,
                "transformation": self.choice.transformation, "window": self.choice.window,
                "params": self.choice.params,
                "accuracy": self.scorer.summary(self.choice.validation_error, self.live.reselect_factor),
                "switched": self.switched, "selected_at": self.selected_at,
                "actual_timestamps": stamps, "actual_values": list(actuals.values()) + _floats(tail)}

    def _future_stamps(self, h: int) -> list[str]:
        """The wire timestamps of the `h` steps after the newest bucket (a fresh list)."""
        last = self.window.last_label
        assert last is not None, "a revised series has points"
        return list(_cached(("future", self.window.freq, _stamp_key(last), h),
                            lambda: _future_stamps(last, self.window.offset, h)))

    def _provisional_stamps(self, n: int) -> list[str]:
        """The ISO timestamps of the provisional tail's `n` labels (`Window.provisional_labels`: the grid up to
        the newest bucket); a fresh list."""
        last = self.window.last_label
        assert last is not None, "a provisional tail has a newest bucket"
        offset = self.window.offset
        return list(_cached(("provisional", self.window.freq, _stamp_key(last), n),
                            lambda: tuple((last - k * offset).isoformat() for k in range(n - 1, -1, -1))))


@dataclass(frozen=True)
class _Ahead:
    """A revision's model after its one provisional point (`LiveSeries._forecast`), with its forecast's mean
    (None: not the mean a forecast without intervals gives, or not as many steps as the scorer records)."""

    base: LiveModel  # the model it was made from
    folded: int  # the final points that model had folded
    value: float  # the provisional point (model value)
    model: LiveModel
    mean: np.ndarray | None

    def stands_for(self, model: LiveModel, folded: int, value: float) -> bool:
        """Whether folding `value` into `model` (which has `folded` points) gives this one's model: the same
        model, nothing folded since, and the same value to the bit (-0.0 is not 0.0)."""
        return (model is self.base and folded == self.folded
                and struct.pack("<d", value) == struct.pack("<d", self.value))


def _floats(values: np.ndarray) -> list[float]:
    """`[float(v) for v in values]`, the same Python floats, in one call."""
    return np.asarray(values, dtype=np.float64).tolist()


_BANDS = tuple((lv, f"lower_{lv}", f"upper_{lv}") for lv in LEVELS)  # a ForecastRecord's interval fields
_CACHED: dict[tuple[Any, ...], Any] = {}
_CACHED_AT_MOST = 16_384  # entries; then the cache starts again (bounded memory)


def _stamp_key(stamp: pd.Timestamp) -> tuple[int, Any, str]:
    """What a Timestamp's text depends on (the instant, the zone, the unit), cheap to hash and compare: equal
    Timestamps in two zones are one key of their own, and hashing a Timestamp or a DateOffset costs more."""
    return stamp.value, stamp.tz, stamp.unit


def _cached(key: tuple[Any, ...], make: Any) -> Any:
    """`make()`, remembered under `key`: every series of a stream on the same grid asks for the same stamps'
    texts (an ISO text costs µs: a revision has several)."""
    value = _CACHED.get(key)
    if value is None:
        if len(_CACHED) >= _CACHED_AT_MOST:
            _CACHED.clear()
        value = _CACHED[key] = make()
    return value


def _iso(stamp: pd.Timestamp) -> str:
    """`stamp.isoformat()`, remembered (`_cached`)."""
    return _cached(("iso", *_stamp_key(stamp)), stamp.isoformat)  # type: ignore[no-any-return]


def _future_stamps(last: pd.Timestamp, offset: DateOffset, h: int) -> list[str]:
    """The wire timestamps of the `h` steps after `last` (the window's newest bucket), as a CSV's forecast
    gives them."""
    index = pd.DatetimeIndex([last], freq=offset)
    return wire_timestamps(future_index(index, h))
