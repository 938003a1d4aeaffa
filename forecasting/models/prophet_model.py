"""TIMEX `fbprophet`: Prophet with its default settings, as TIMEX uses it.

Prophet needs ns datetimes, so series outside that range are shifted by a multiple of 400 years
(see forecasting.ns_range). Both interval levels come from one set of predictive samples."""

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np
import pandas as pd

from forecasting.models.base import LEVELS, ForecastModel, Prediction
from forecasting.ns_range import future_index, ns_shift_years, shift_years

_SAMPLES = 1000  # Prophet's default uncertainty_samples
# Prophet lets Stan's optimizer run 10^4 iterations. Well-posed fits converge in far fewer; the ones that
# reach the cap are degenerate (more parameters than points, e.g. 29 log-scaled months: sigma -> 0) and
# spent ~6 s CPU each, three quarters of Prophet's time on the bench, for no better forecast.
_MAX_ITERATIONS = 1000


def _quiet() -> None:
    for name in ("cmdstanpy", "prophet"):
        logging.getLogger(name).setLevel(logging.ERROR)
        logging.getLogger(name).disabled = True  # cmdstanpy resets its level on each run


def _regressor_names(count: int) -> list[str]:
    """Prophet's own names for the regressors: a user's column may be any string, Prophet reserves some
    ('ds', 'trend', holiday names...)."""
    return [f"extra_regressor_{i}" for i in range(count)]


class FBProphet(ForecastModel):
    name = "fbprophet"
    min_points = 3
    takes_regressors = True  # add_regressor, as TIMEX does (values not transformed, Prophet standardizes them)

    def fit(self, y: pd.Series, X: pd.DataFrame | None = None) -> Self:
        from prophet import Prophet

        _quiet()
        self._check_length(y)
        X = self._check_regressors(y, X)
        self._columns = [] if X is None else list(X.columns)
        self._index = pd.DatetimeIndex(y.index)
        self._h_max = 0
        ds = self._index
        # The shift must also hold the future dates; a generous margin of 100 periods past the end.
        future_end = future_index(ds, 100)[-1]
        self._shift = ns_shift_years(ds[0], future_end)
        self._model = self._prophet(Prophet)
        frame = pd.DataFrame(
            {"ds": shift_years(ds, self._shift).as_unit("ns"), "y": np.asarray(y, dtype=float)}
        )
        if X is not None:
            for column in _regressor_names(len(self._columns)):
                self._model.add_regressor(column)
            frame[_regressor_names(len(self._columns))] = X.to_numpy(dtype=float)
        self._model.fit(frame, iter=_MAX_ITERATIONS)
        return self

    def _prophet(self, prophet: Any) -> Any:
        """Prophet with the config's holidays: a country's (by code, from the `holidays` package, for the
        years of the data) or the given dates (one holiday, "holiday")."""
        holidays = self.options.get("holidays")
        if holidays and not isinstance(holidays, str):
            dates = shift_years(pd.DatetimeIndex(np.array(holidays, dtype="datetime64[us]")), self._shift)
            # Holidays that the shift puts outside Prophet's calendar are far from the data: left out.
            dates = dates[(dates >= pd.Timestamp.min) & (dates <= pd.Timestamp.max)].as_unit("ns")
            return prophet(uncertainty_samples=0, holidays=pd.DataFrame({"holiday": "holiday", "ds": dates}))
        model = prophet(uncertainty_samples=0)
        if holidays:
            model.add_country_holidays(country_name=holidays)
        return model

    def predict(self, h: int, levels: tuple[int, ...] = LEVELS, X_future: pd.DataFrame | None = None
                ) -> Prediction:
        regressors = self._check_future(h, self._columns, X_future)
        future = shift_years(future_index(self._index, h), self._shift).as_unit("ns")
        frame = pd.DataFrame({"ds": future})
        if regressors is not None:
            frame[_regressor_names(len(self._columns))] = regressors
        if not levels:
            self._model.uncertainty_samples = 0
            return Prediction(np.asarray(self._model.predict(frame)["yhat"], dtype=float))
        self._model.uncertainty_samples = _SAMPLES
        mean = np.asarray(self._model.predict(frame)["yhat"], dtype=float)
        samples = self._model.predictive_samples(frame)["yhat"]  # shape (h, samples)
        intervals = {}
        for lv in levels:
            tail = (100 - lv) / 2
            lo, hi = np.percentile(samples, [tail, 100 - tail], axis=1)
            intervals[lv] = (lo, hi)
        return Prediction(mean, intervals)

    def params(self) -> dict[str, str]:
        out = {"calendar_shift_years": str(self._shift)} if self._shift else {}
        holidays = self.options.get("holidays")
        if holidays:
            out["holidays"] = holidays if isinstance(holidays, str) else f"{len(holidays)} dates"
        return out
