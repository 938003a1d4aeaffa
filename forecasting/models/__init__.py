"""Model registry: keyword (as in TIMEX configs) -> class. Unknown or unavailable names raise a ValueError
that says what is known."""

from __future__ import annotations

from forecasting.models.base import LEVELS, ForecastModel, Prediction
from forecasting.models.exponential_smoothing import ExponentialSmoothing
from forecasting.models.lstm import LSTM
from forecasting.models.mockup import MockUp
from forecasting.models.names import KNOWN_MODELS, UNAVAILABLE_MODELS
from forecasting.models.prophet_model import FBProphet
from forecasting.models.statsforecast_models import (
    MSTL,
    AutoARIMA,
    AutoCES,
    AutoETS,
    AutoETSDamped,
    AutoThetaModel,
    DynamicOptimizedTheta,
    Naive,
    Persistence,
    SeasonalNaive,
    Theta,
)

MODELS: dict[str, type[ForecastModel]] = {
    cls.name: cls
    for cls in (
        FBProphet,
        AutoARIMA,
        ExponentialSmoothing,
        Persistence,
        Naive,
        MockUp,
        LSTM,
        SeasonalNaive,
        Theta,
        AutoETS,
        DynamicOptimizedTheta,
        AutoThetaModel,
        AutoCES,
        MSTL,
        AutoETSDamped,
    )
}
assert tuple(MODELS) == KNOWN_MODELS, "names.KNOWN_MODELS must list the registry's keywords in order"


def get_model_class(name: str) -> type[ForecastModel]:
    key = name.lower()
    if key in UNAVAILABLE_MODELS:
        raise ValueError(f"model '{key}' is not available in this build ({UNAVAILABLE_MODELS[key]})")
    if key not in MODELS:
        raise ValueError(f"unknown model '{name}'; known: {', '.join(MODELS)}")
    return MODELS[key]


__all__ = ["LEVELS", "MODELS", "ForecastModel", "Prediction", "get_model_class"]
