"""Models wrapped from statsforecast: one small class each, the same fit/predict for all."""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
import pandas as pd

from forecasting.models.base import LEVELS, ForecastModel, Prediction
from forecasting.models.quantiles import cache_normal_quantiles
from forecasting.seasonality import season_lengths, usable_season


class _StatsforecastModel(ForecastModel):
    uses_season: bool = True

    def _build(self, season: int) -> Any:
        raise NotImplementedError

    _columns: list[str] = []  # the regressors of the fit (models that take them)

    def fit(self, y: pd.Series, X: pd.DataFrame | None = None) -> Self:
        self._check_length(y)
        self._check_regressors(y, X)
        values = self._values(y)
        self._season = usable_season(self.season_length, len(values)) if self.uses_season else 1
        self._model = self._build(self._season).fit(values)
        return self

    def predict(self, h: int, levels: tuple[int, ...] = LEVELS, X_future: pd.DataFrame | None = None
                ) -> Prediction:
        future = self._check_future(h, self._columns, X_future)
        exog = {} if future is None else {"X": future}
        if not levels:
            return Prediction(np.asarray(self._model.predict(h=h, **exog)["mean"], dtype=float))
        cache_normal_quantiles()  # each interval would freeze a scipy distribution for the same two levels
        raw = self._model.predict(h=h, level=list(levels), **exog)
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

    def fit(self, y: pd.Series, X: pd.DataFrame | None = None) -> Self:
        self._check_length(y)
        self._check_regressors(y, X)
        values = self._values(y)
        self._season = self.season_length if 1 < self.season_length <= len(values) else 1
        self._model = self._build(self._season).fit(values)
        return self

    def _build(self, season: int) -> Any:
        from statsforecast.models import SeasonalNaive as SFSeasonalNaive

        return SFSeasonalNaive(season_length=season)


class AutoARIMA(_StatsforecastModel):
    """TIMEX `arima`: statsforecast's AutoARIMA (stepwise, AICc), ~10x faster than pmdarima, which TIMEX
    calls with seasonal=False. Two choices follow from the bench against TIMEX 1.2.3:

    * d comes from pmdarima's KPSS test (see `kpss_differences`): statsforecast's shorter KPSS lag
      truncation differences more often, which cost 17 % MAE against TIMEX on the bench's price series;
    * with two full seasons of data that statsforecast's own seasonal-strength test (the one its
      seasonal differencing uses) calls seasonal, the search includes seasonal terms (P, Q <= 1): on
      seasonal series this beats TIMEX's non-seasonal ARIMA by 15-50 % in MAE, at up to ~0.5 s per fit
      on 144 points (non-seasonal: ~0.1 s);
    * beyond 150 points the search compares candidates by conditional sum of squares and refits only the
      best ones by exact likelihood (`approximation`, the default of R's auto.arima and of statsforecast's
      own `auto_arima_f`, which its AutoARIMA class turns off): each exact seasonal fit costs O(n) Kalman
      steps, so on 700 monthly points the search fell from ~2.3 to ~1 CPU s a fit, with the same test MAE
      (bench/arima_search.py).

    Option `seasonal` False (`model_parameters.arima_seasonal`): TIMEX 1.2.3's search itself, pmdarima's
    `auto_arima(seasonal=False)` replayed on statsmodels' SARIMAX (forecasting/models/timex_arima.py).
    """

    name = "arima"
    min_points = 4
    takes_regressors = True  # regression with ARIMA errors (statsforecast's exogenous X)
    _timex: tuple[Any, Any] | None = None  # TIMEX's search (option seasonal False): (SARIMAX results, candidate)

    def fit(self, y: pd.Series, X: pd.DataFrame | None = None) -> Self:
        from statsforecast.models import AutoARIMA as SFAutoARIMA

        self._check_length(y)
        X = self._check_regressors(y, X)
        self._columns = [] if X is None else list(X.columns)
        exog = None if X is None else X.to_numpy(dtype=float)
        values = self._values(y)
        self._timex = None
        if not self.options.get("seasonal", True):
            from forecasting.models.timex_arima import auto_arima, detrended

            self._season = 1
            self._timex = auto_arima(values, exog, kpss_differences(detrended(values, exog)))
            return self
        self._season = _arima_season(values, self.season_length)
        approximate = len(values) > _EXACT_SEARCH_MAX_POINTS
        if self._season > 1:
            # statsforecast picks D and then d on the seasonally differenced data, as R's auto.arima.
            search = SFAutoARIMA(season_length=self._season, max_P=1, max_Q=1, approximation=approximate)
        else:
            search = SFAutoARIMA(season_length=1, d=kpss_differences(values), approximation=approximate)
        self._model = search.fit(values, X=exog)
        return self

    def predict(self, h: int, levels: tuple[int, ...] = LEVELS, X_future: pd.DataFrame | None = None
                ) -> Prediction:
        if self._timex is None:
            return super().predict(h, levels, X_future)
        future = self._check_future(h, self._columns, X_future)
        forecast = self._timex[0].get_forecast(h, exog=future)
        intervals = {lv: tuple(np.asarray(b, dtype=float) for b in forecast.conf_int(alpha=1 - lv / 100).T)
                     for lv in levels}
        return Prediction(np.asarray(forecast.predicted_mean, dtype=float), intervals or None)

    def params(self) -> dict[str, str]:
        from statsforecast.arima import arima_string

        if self._timex is not None:
            (p, d, q), intercept = self._timex[1].order, self._timex[1].intercept
            return {"order": f"ARIMA({p},{d},{q}){' with intercept' if intercept else ''}",
                    "aic": f"{self._timex[0].aic:.3f}", "search": "TIMEX 1.2.3 (pmdarima's non-seasonal auto_arima)"}
        return {"order": arima_string(self._model.model_).strip()}


_EXACT_SEARCH_MAX_POINTS = 150  # R's auto.arima threshold: longer series are searched by CSS first
_SEASONAL_STRENGTH = 0.64  # statsforecast's (and R forecast's) threshold for seasonal differencing
_KPSS_ALPHA = 0.05
_MAX_D = 2


def _arima_season(values: np.ndarray, season: int) -> int:
    from statsforecast.arima import seas_heuristic

    season = usable_season(season, len(values))
    if season > 1 and np.ptp(values) > 0 and seas_heuristic(values, season) >= _SEASONAL_STRENGTH:
        return season
    return 1


def kpss_differences(values: np.ndarray) -> int:
    """Number of differences (<= 2) by the KPSS level test as pmdarima's `ndiffs` runs it: lag
    truncation trunc(4 (n/100)^0.25), 5 % level. statsforecast's `ndiffs` uses trunc(3 sqrt(n)/13)."""
    from statsmodels.tsa.stattools import kpss

    x = np.asarray(values, dtype=float)
    d = 0
    while d < _MAX_D and len(x) > 3 and np.ptp(x) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # p-values outside the table are clipped, with a warning
            p_value = kpss(x, "c", nlags=int(4 * (len(x) / 100) ** 0.25))[1]
        if not p_value < _KPSS_ALPHA:
            break
        d += 1
        x = np.diff(x)
    return d


class AutoETS(_StatsforecastModel):
    name = "autoets"
    min_points = 4

    def _build(self, season: int) -> Any:
        from statsforecast.models import AutoETS as SFAutoETS

        return SFAutoETS(season_length=season)

    def params(self) -> dict[str, str]:
        return {**super().params(), "components": str(self._model.model_.get("method", ""))}


class AutoETSDamped(AutoETS):
    """AutoETS restricted to a damped additive trend (Gardner's damped trend, a strong M3 benchmark): the error
    and the season still chosen by AICc, but never a model without a trend nor one with an undamped trend, whose
    long horizons run away. Cheaper than autoets (a third of its candidate models). On M3 monthly it replaces
    autoets in the recommended combination (README, Accuracy on M3 monthly)."""

    name = "autoets_damped"
    min_points = 8  # statsforecast's ETS refuses "tiny datasets" (n <= 4 + its parameters: l0, alpha, phi)

    def _build(self, season: int) -> Any:
        from statsforecast.models import AutoETS as SFAutoETS

        return SFAutoETS(season_length=season, damped=True)


class Theta(_StatsforecastModel):
    name = "theta"
    min_points = 4

    def _build(self, season: int) -> Any:
        from statsforecast.models import AutoTheta

        return AutoTheta(season_length=season)


class AutoThetaModel(Theta):
    """statsforecast's AutoTheta under its own name (`theta` already is AutoTheta: the same fit)."""

    name = "autotheta"


class DynamicOptimizedTheta(_StatsforecastModel):
    """The dynamic optimized theta method (Fiorucci et al. 2016), one of the best single methods on M3."""

    name = "dynamic_optimized_theta"
    min_points = 4

    def _build(self, season: int) -> Any:
        from statsforecast.models import DynamicOptimizedTheta as SFDynamicOptimizedTheta

        return SFDynamicOptimizedTheta(season_length=season)


class AutoCES(_StatsforecastModel):
    """Complex exponential smoothing (Svetunkov), its variant chosen by AICc; seasonal with two full seasons."""

    name = "autoces"
    min_points = 5  # statsforecast's CES fails on fewer

    def _build(self, season: int) -> Any:
        from statsforecast.models import AutoCES as SFAutoCES

        return SFAutoCES(season_length=season)


class MSTL(_StatsforecastModel):
    """MSTL: every seasonality the frequency implies (a day and a week for hourly data, a week and a year for
    daily: `forecasting.seasonality.season_lengths`) with two full seasons in the data, removed by STL, the rest
    forecast by a non-seasonal AutoETS (statsforecast's default trend model). No usable season: that AutoETS
    alone."""

    name = "mstl"
    min_points = 7  # the trend's AutoETS fails on fewer ("tiny datasets")

    def fit(self, y: pd.Series, X: pd.DataFrame | None = None) -> Self:
        from statsforecast.models import MSTL as SFMSTL
        from statsforecast.models import AutoETS as SFAutoETS

        self._check_length(y)
        self._check_regressors(y, X)
        values = self._values(y)
        freq = getattr(y.index, "freqstr", None)
        # season_length is the frequency's first season only; an index without a frequency has just that one.
        candidates = season_lengths(freq) if freq else (self.season_length,)
        self._seasons = [m for m in candidates if usable_season(m, len(values)) > 1]
        trend = SFAutoETS(model="ZZN", season_length=1)
        self._model = (SFMSTL(season_length=self._seasons, trend_forecaster=trend) if self._seasons else trend
                       ).fit(values)
        return self

    def params(self) -> dict[str, str]:
        return {"season_lengths": ",".join(map(str, self._seasons)) or "none"}
