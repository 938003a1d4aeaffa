"""Models wrapped from statsforecast: one small class each, the same fit/predict for all."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

from forecasting.models.base import LEVELS, ForecastModel, Prediction
from forecasting.seasonality import usable_season


class _StatsforecastModel(ForecastModel):
    uses_season: bool = True

    def _build(self, season: int) -> Any:
        raise NotImplementedError

    def fit(self, y: pd.Series) -> Self:
        self._check_length(y)
        values = np.asarray(y, dtype=float)
        self._season = usable_season(self.season_length, len(values)) if self.uses_season else 1
        self._model = self._build(self._season).fit(values)
        return self

    def predict(self, h: int, levels: tuple[int, ...] = LEVELS) -> Prediction:
        if not levels:
            return Prediction(np.asarray(self._model.predict(h=h)["mean"], dtype=float))
        raw = self._model.predict(h=h, level=list(levels))
        intervals = {
            lv: (np.asarray(raw[f"lo-{lv}"], dtype=float), np.asarray(raw[f"hi-{lv}"], dtype=float))
            for lv in levels
        }
        return Prediction(np.asarray(raw["mean"], dtype=float), intervals)

    def params(self) -> dict[str, str]:
        return {"season_length": str(getattr(self, "_season", 1))}


class Naive(_StatsforecastModel):
    """TIMEX `persistence`/`naive`: the last value, repeated."""

    name = "naive"
    min_points = 1
    uses_season = False

    def _build(self, season: int) -> Any:
        from statsforecast.models import Naive as SFNaive

        return SFNaive()


class Persistence(Naive):
    name = "persistence"


class SeasonalNaive(_StatsforecastModel):
    """The value one season ago; needs a full season of training points (else it is plain naive)."""

    name = "seasonal_naive"
    min_points = 1

    def fit(self, y: pd.Series) -> Self:
        self._check_length(y)
        values = np.asarray(y, dtype=float)
        self._season = self.season_length if 1 < self.season_length <= len(values) else 1
        self._model = self._build(self._season).fit(values)
        return self

    def _build(self, season: int) -> Any:
        from statsforecast.models import SeasonalNaive as SFSeasonalNaive

        return SFSeasonalNaive(season_length=season)


class AutoARIMA(_StatsforecastModel):
    """TIMEX `arima`: automatic order search. TIMEX calls pmdarima's auto_arima with seasonal=False, so
    this is statsforecast's AutoARIMA with season_length=1 (stepwise, AICc): same model family, ~10x
    faster; seasonal AutoARIMA costs 10-40x more and seasonal series are covered by autoets,
    exponentialsmoothing, seasonal_naive and fbprophet."""

    name = "arima"
    min_points = 4
    uses_season = False

    def _build(self, season: int) -> Any:
        from statsforecast.models import AutoARIMA as SFAutoARIMA

        return SFAutoARIMA(season_length=1)

    def params(self) -> dict[str, str]:
        from statsforecast.arima import arima_string

        return {"order": arima_string(self._model.model_).strip()}


class AutoETS(_StatsforecastModel):
    name = "autoets"
    min_points = 4

    def _build(self, season: int) -> Any:
        from statsforecast.models import AutoETS as SFAutoETS

        return SFAutoETS(season_length=season)

    def params(self) -> dict[str, str]:
        return {**super().params(), "components": str(self._model.model_.get("method", ""))}


class Theta(_StatsforecastModel):
    name = "theta"
    min_points = 4

    def _build(self, season: int) -> Any:
        from statsforecast.models import AutoTheta

        return AutoTheta(season_length=season)
