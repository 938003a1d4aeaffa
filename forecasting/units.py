"""Independent units of work: one (model, transformation, training window) on one series.

`run_unit` is pure (config, series, spec -> UnitResult) and never raises for a model failure, so the
predictor can spread units over processes and machines and combine the results in any order. A MemoryError
is raised, not reported: running out of memory says nothing about the model (the predictor's pool names
its memory cap).

TIMEX semantics: the last `test_values` points are held out; training windows are the last
k × delta points before them, delta = round(len × delta_training_percentage / 100), for k = 1, 2, ...
until the whole training part is used. Each unit fits on its window, forecasts the held-out points and
is scored on them (after min/max clipping and rounding, as TIMEX scores). The final forecast refits
the same window extended by the test points and forecasts `prediction_lags` steps.

Regressors: a unit whose spec names `regressors` fits its model (one that `takes_regressors`) with those
columns of the `regressors` frame given to `run_unit`/`refit_unit`, whose index holds every timestamp of the
series and of the forecast horizon (the values at the held-out points are the known ones, as TIMEX uses them;
regressors are not transformed, as in TIMEX).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from forecasting.config import TimexConfig
from forecasting.data import MIN_TRAIN_POINTS
from forecasting.metrics import compute_metrics
from forecasting.models import LEVELS, Prediction, get_model_class
from forecasting.ns_range import future_index
from forecasting.seasonality import season_length
from forecasting.series import datetime_index, wire_timestamps
from forecasting.transformations import make_transformation


@dataclass(frozen=True, order=True)
class UnitSpec:
    model: str
    transformation: str
    window: int  # training points before the held-out test points
    regressors: tuple[str, ...] = ()  # regressor columns the model is fitted with; () = univariate
    # A historical prediction step (forecasting.historical): the points known then; 0 for an ordinary unit.
    historical_end: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "transformation": self.transformation, "window": self.window,
                "regressors": list(self.regressors), "historical_end": self.historical_end}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnitSpec:
        return cls(model=str(d["model"]), transformation=str(d["transformation"]), window=int(d["window"]),
                   regressors=tuple(str(r) for r in d.get("regressors") or ()),
                   historical_end=int(d.get("historical_end") or 0))


@dataclass
class Forecast:
    timestamps: list[str]
    yhat: list[float]
    lower_80: list[float] | None = None
    upper_80: list[float] | None = None
    lower_95: list[float] | None = None
    upper_95: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        # Each list copied as a whole: `asdict` copies every float of it one by one (a quarter of a decision's time).
        return {f.name: (None if (v := getattr(self, f.name)) is None else list(v)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Forecast:
        return cls(**{k: (list(v) if v is not None else None) for k, v in d.items()})


@dataclass
class UnitResult:
    spec: UnitSpec
    metrics: dict[str, float] = field(default_factory=dict)
    test_forecast: list[float] = field(default_factory=list)
    forecast: Forecast | None = None
    fit_seconds: float = 0.0
    params: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # NaN stays a float NaN; JSON encoders that reject it should map it to null.
        return {
            "spec": self.spec.to_dict(),
            "metrics": dict(self.metrics),
            "test_forecast": list(self.test_forecast),
            "forecast": self.forecast.to_dict() if self.forecast else None,
            "fit_seconds": self.fit_seconds,
            "params": dict(self.params),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnitResult:
        return cls(
            spec=UnitSpec.from_dict(d["spec"]),
            metrics={k: (math.nan if v is None else float(v)) for k, v in d.get("metrics", {}).items()},
            test_forecast=[float(v) for v in d.get("test_forecast", [])],
            forecast=Forecast.from_dict(d["forecast"]) if d.get("forecast") else None,
            fit_seconds=float(d.get("fit_seconds", 0.0)),
            params=dict(d.get("params", {})),
            error=d.get("error"),
        )


def training_windows(n_points: int, test_values: int, delta_percentage: float) -> list[int]:
    n_train = n_points - test_values
    delta = max(1, int(round(n_points * delta_percentage / 100)))
    windows = {min((k + 1) * delta, n_train) for k in range(math.ceil(n_train / delta))}
    return sorted(w for w in windows if w >= MIN_TRAIN_POINTS)


def plan_units(config: TimexConfig, series: pd.Series, regressors: Sequence[str] = ()) -> list[UnitSpec]:
    """Every (model, transformation, window), in config order then growing windows. With `regressors`
    (the series' additional regressors), each model that takes them also gets every (transformation,
    window) with them, right after its univariate units: the validator keeps a model's best unit, so the
    regressors are used where they make the model better and not otherwise (TIMEX keeps the
    multivariate result only when its error is lower)."""
    return plan_units_for(config, len(series), str(series.name), regressors)


def plan_units_for(config: TimexConfig, points: int, name: str, regressors: Sequence[str] = ()
                   ) -> list[UnitSpec]:
    """`plan_units` from the series' length and its regressors' names alone (the plan depends on nothing
    else)."""
    mp = config.model_parameters
    test = mp.test_size(points)
    windows = training_windows(points, test, mp.delta_training_percentage)
    if not windows:
        raise ValueError(
            f"series '{name}' has {points} points: too few for {test} test points "
            f"and {MIN_TRAIN_POINTS} training points"
        )
    plan = []
    for m in config.model_names:
        plan += [UnitSpec(m, t, w) for t in config.transformations_of(m) for w in windows]
        if regressors and get_model_class(m).takes_regressors:
            plan += [UnitSpec(m, t, w, tuple(regressors)) for t in config.transformations_of(m) for w in windows]
    return plan


def _bounds(config: TimexConfig, name: str) -> tuple[float | None, float | None, bool]:
    mp = config.model_parameters

    def pick(values: dict[str, float] | None) -> float | None:
        if not values:
            return None
        return values.get("_all", values.get(name))

    rounding = bool(mp.round_to_integer) and ("_all" in mp.round_to_integer or name in mp.round_to_integer)
    return pick(mp.min_values), pick(mp.max_values), rounding


def _adjust(values: np.ndarray, config: TimexConfig, name: str) -> np.ndarray:
    return _adjust_by(values, _bounds(config, name))


def _adjust_by(values: np.ndarray, bounds: tuple[float | None, float | None, bool]) -> np.ndarray:
    """`_adjust` with the series' `_bounds` in hand (a live series adjusts every revision's arrays)."""
    low, high, rounding = bounds
    out = np.clip(values, low, high) if (low is not None or high is not None) else values
    return np.round(out) if rounding else out


def model_options(config: TimexConfig, model: str) -> dict[str, Any]:
    """What a model reads from model_parameters besides the common settings."""
    mp = config.model_parameters
    if model == "fbprophet" and mp.holidays is not None:
        return {"holidays": mp.holidays}
    if model == "arima" and mp.arima_seasonal is False:
        return {"seasonal": False}  # TIMEX 1.2.3's non-seasonal search (forecasting/models/statsforecast_models.py)
    return {}


def _regressor_rows(spec: UnitSpec, regressors: pd.DataFrame | None, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The spec's regressor columns at `index` (training points or forecast steps)."""
    if regressors is None:
        raise ValueError(f"the unit uses the regressors {', '.join(map(repr, spec.regressors))}, "
                         "but no regressor values reached it")
    missing = [r for r in spec.regressors if r not in regressors.columns]
    if missing:
        raise ValueError(f"no values for the regressors {', '.join(map(repr, missing))}")
    rows = regressors.loc[:, list(spec.regressors)].reindex(index)
    if rows.isna().to_numpy().any():
        gap = index[rows.isna().any(axis=1).to_numpy()]
        raise ValueError(f"the regressors have no values from {gap[0]} to {gap[-1]}")
    return rows


def _fit_predict(
    config: TimexConfig, train: pd.Series, spec: UnitSpec, h: int, levels: tuple[int, ...],
    regressors: pd.DataFrame | None = None,
) -> tuple[Prediction, dict[str, str]]:
    """Fit model+transformation on `train` (with the spec's regressors), predict `h` steps, back in the
    original scale."""
    values = train.to_numpy()
    transformation = make_transformation(spec.transformation).fit(values)
    model_cls = get_model_class(spec.model)
    model = model_cls(season_length=season_length(train.index.freqstr), options=model_options(config, spec.model))
    # The identity's values are train's own: fit `train` itself (a new Series costs as much as a naive fit).
    transformed = (train if transformation.identity and train.dtype == np.float64
                   else pd.Series(transformation.apply(values), index=train.index, name=train.name))
    X = X_future = None
    if spec.regressors:
        if not model_cls.takes_regressors:
            raise ValueError(f"model '{spec.model}' takes no regressors")
        index = pd.DatetimeIndex(train.index)
        X = _regressor_rows(spec, regressors, index)
        X_future = _regressor_rows(spec, regressors, future_index(index, h))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(transformed, X)
        raw = model.predict(h, levels, X_future)
    mean = transformation.inverse(raw.mean)
    if not np.all(np.isfinite(mean)):
        raise ValueError(
            "the forecast is not finite (the model diverged, or the inverse transformation "
            "overflowed); try another transformation"
        )
    intervals = None
    if raw.intervals:
        intervals = {
            lv: (transformation.inverse(lo), transformation.inverse(hi))
            for lv, (lo, hi) in raw.intervals.items()
        }
    params = dict(model.params())
    if spec.regressors:
        params["regressors"] = json.dumps(list(spec.regressors), ensure_ascii=False)
    if spec.transformation != "none":
        params["transformation"] = transformation.describe()
    return Prediction(mean, intervals), params


def _final_forecast(
    config: TimexConfig, series: pd.Series, spec: UnitSpec, regressors: pd.DataFrame | None = None
) -> tuple[Forecast, dict[str, str]]:
    test = config.model_parameters.test_size(len(series))
    lags = config.model_parameters.prediction_lags
    data = series.iloc[-(spec.window + test) :]
    pred, params = _fit_predict(config, data, spec, lags, LEVELS, regressors)
    name = str(series.name)
    stamps = wire_timestamps(future_index(datetime_index(series.index), lags))
    bands: dict[str, list[float] | None] = {}
    for lv in LEVELS:
        lo_hi = (pred.intervals or {}).get(lv)
        bands[f"lower_{lv}"] = _adjust(lo_hi[0], config, name).tolist() if lo_hi else None
        bands[f"upper_{lv}"] = _adjust(lo_hi[1], config, name).tolist() if lo_hi else None
    forecast = Forecast(timestamps=stamps, yhat=_adjust(pred.mean, config, name).tolist(), **bands)
    return forecast, params


def _describe_failure(spec: UnitSpec, exc: Exception) -> str:
    return (
        f"model '{spec.model}' with transformation '{spec.transformation}' on {spec.window} training "
        f"points failed: {exc}"
    )


def run_unit(
    config: TimexConfig, series: pd.Series, spec: UnitSpec, with_forecast: bool = True,
    regressors: pd.DataFrame | None = None,
) -> UnitResult:
    """Validate one unit; with `with_forecast` also refit on window + test points and forecast.
    `regressors`: the values of the regressors the spec names, on the series' index and the horizon."""
    started = time.perf_counter()
    try:
        test = config.model_parameters.test_size(len(series))
        # One slice of the series for the training window (a unit's pandas slices cost as much as a naive fit):
        # the points before the held-out ones, as series.iloc[:-test] has them (none when test is 0).
        end = max(len(series) - test, 0) if test > 0 else 0
        if not MIN_TRAIN_POINTS <= spec.window <= end:
            raise ValueError(f"window {spec.window} is outside {MIN_TRAIN_POINTS}..{end} training points")
        train = series.iloc[end - spec.window : end]
        pred, params = _fit_predict(config, train, spec, test, (), regressors)
        predicted = _adjust(pred.mean, config, str(series.name))
        metrics = compute_metrics(
            series.to_numpy()[-test:], predicted, train.to_numpy(), season_length(train.index.freqstr)
        )
        params["train_start"] = wire_timestamps(datetime_index(train.index[:1]))[0]
        result = UnitResult(spec=spec, metrics=metrics, test_forecast=predicted.tolist(), params=params)
    except MemoryError:  # the process hit its memory cap: not the model's answer, the caller's to report
        raise
    except Exception as exc:  # a unit reports, never raises: other units go on
        return UnitResult(
            spec=spec, error=_describe_failure(spec, exc), fit_seconds=time.perf_counter() - started
        )
    result.fit_seconds = time.perf_counter() - started
    return refit_unit(config, series, result, regressors) if with_forecast else result


def refit_unit(config: TimexConfig, series: pd.Series, result: UnitResult,
               regressors: pd.DataFrame | None = None) -> UnitResult:
    """Add the final forecast to a validated unit (the pipeline does this only for each model's best)."""
    if result.error is not None or result.forecast is not None:
        return result
    started = time.perf_counter()
    try:
        forecast, params = _final_forecast(config, series, result.spec, regressors)
    except MemoryError:
        raise
    except Exception as exc:
        return replace(result, error=f"final refit: {_describe_failure(result.spec, exc)}")
    merged = {**result.params, **{f"final_{k}": v for k, v in params.items() if result.params.get(k) != v}}
    return replace(
        result,
        forecast=forecast,
        params=merged,
        fit_seconds=result.fit_seconds + time.perf_counter() - started,
    )


# Units sized by cost. A fit of these models on a short series takes milliseconds (bench/forecast_core.py:
# naive 1-2 ms, theta 5-15 ms on 120 points), far less than a record's trip through three services, so the
# units of a series travel and run together, at most BATCH_UNITS at a time (a batch stays well inside the
# unit time limit). Anything else (prophet, ARIMA, exponential smoothing, any model on a long series) stays
# one unit per record, so the predictors share a costly series. `persistence` is TIMEX's name for naive.
CHEAP_MODELS = frozenset({"naive", "persistence", "seasonal_naive", "theta", "autotheta", "dynamic_optimized_theta"})
# Of those, the ones whose fit and forecast are a slice and a repeat of the training values (no search, no
# optimiser, the season read from the frequency): their time and memory follow from the points alone.
CLOSED_FORM_MODELS = frozenset({"naive", "persistence", "seasonal_naive"})
CHEAP_POINTS = 5_000
BATCH_UNITS = 64
# Relative cost of a fit per training point, to order a series' records longest first (bench/cpu_timeline.py,
# the bench's monthly series: ARIMA 0.55 s a unit, Prophet 0.34 s, exponential smoothing 0.19 s; every model
# costs more on a longer window). The order is the order of the queue (records are published, and the
# predictors take them, in this order): a series' last records are short, so its final refits, asked once
# its last unit is in, do not wait long, and the pool's tail at the end of a request is short. Other models: 1.
MODEL_COST = {"arima": 3.0, "fbprophet": 2.0, "exponentialsmoothing": 1.0}
CHEAP_COST = 0.01


def unit_cost(unit: UnitSpec) -> float:
    """A rough relative cost of `unit` (its order among its series' records; never a limit). A historical step
    validates every window on its known points and refits the best: about three times its points."""
    weight = CHEAP_COST if unit.model in CHEAP_MODELS else MODEL_COST.get(unit.model, 1.0)
    return weight * (3 * unit.historical_end if unit.historical_end else unit.window)


def batches(units: list[UnitSpec], points: int) -> list[list[int]]:
    """Indexes of `units` grouped into records: costly ones alone, costliest first, then the cheap ones together
    (in plan order). The indexes stay those of `units`; only the records' order follows the cost."""
    if points > CHEAP_POINTS:
        return sorted(([i] for i in range(len(units))), key=lambda r: -unit_cost(units[r[0]]))
    cheap = [i for i, u in enumerate(units) if u.model in CHEAP_MODELS]
    costly = sorted(([i] for i, u in enumerate(units) if u.model not in CHEAP_MODELS),
                    key=lambda r: -unit_cost(units[r[0]]))
    return costly + [cheap[k:k + BATCH_UNITS] for k in range(0, len(cheap), BATCH_UNITS)]
