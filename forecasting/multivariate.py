"""TIMEX's multivariate stage (pipeline.py `get_best_multivariate_predictions`) as pure planning and choice,
shared by the validator (validator.multivariate, which carries it out over the stream) and the in-process
core (forecasting.pipeline), so both plan the same units and keep the same answer.

A target's extra regressors are the series its xcorr chose (forecasting.xcorr); each enters the model as its
history followed by its own best univariate forecast (`with_forecast`). The stage's units are each model
that takes regressors, with its best univariate transformation, over every training window (`plan`); the
best of them is refitted alone, and kept only when its error is lower than the univariate answer's (`keeps`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from forecasting.config import TimexConfig
from forecasting.metrics import score
from forecasting.models import get_model_class
from forecasting.selection import choose_final
from forecasting.units import UnitResult, UnitSpec, training_windows
from forecasting.xcorr import SeriesXcorr


def models(config: TimexConfig) -> list[str]:
    """The request's models that take regressors."""
    return [m for m in config.model_names if get_model_class(m).takes_regressors]


def wanted(config: TimexConfig, found: SeriesXcorr | None) -> list[str]:
    """The series' extra regressors, when a model of the request can take them."""
    return list(found.regressors) if found and found.regressors and models(config) else []


def with_forecast(history: pd.Series, forecast: Mapping[str, Any]) -> pd.Series:
    """A regressor's values: its history, then its forecast (`timestamps`, `yhat`) past the history's end."""
    future = pd.Series(forecast["yhat"], index=pd.DatetimeIndex(pd.to_datetime(forecast["timestamps"])))
    return pd.concat([history, future[future.index > history.index[-1]]]).rename(history.name)


def plan(config: TimexConfig, per_model: Mapping[str, UnitResult], points: int, regressors: Sequence[str]
         ) -> list[UnitSpec]:
    """Each model that takes regressors, with its best univariate transformation (`per_model`: each model's
    best unit), over every training window of `points`."""
    if not regressors:
        return []
    mp = config.model_parameters
    windows = training_windows(points, mp.test_size(points), mp.delta_training_percentage)
    return [UnitSpec(m, per_model[m].spec.transformation, w, tuple(regressors))
            for m in models(config) if m in per_model for w in windows]


def best(config: TimexConfig, results: Iterable[UnitResult], refits: Iterable[UnitResult]) -> UnitResult | None:
    """The best multivariate unit with its final refit folded in (None: it has no final forecast)."""
    found = choose_final(config, results, refits).best
    return found if found is not None and found.error is None and found.forecast is not None else None


def keeps(config: TimexConfig, univariate_metrics: Mapping[str, float] | None, multivariate: UnitResult) -> bool:
    """TIMEX keeps the multivariate result only when its error is lower (or there is no univariate one)."""
    estimator = config.model_parameters.main_accuracy_estimator
    return univariate_metrics is None or score(multivariate.metrics, estimator) < score(univariate_metrics, estimator)
