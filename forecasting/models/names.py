"""Model keywords, importable without the heavy forecasting libraries (the config validator uses them)."""

# TIMEX keywords first, then the models this core adds (statsforecast).
KNOWN_MODELS: tuple[str, ...] = (
    "fbprophet",
    "arima",
    "exponentialsmoothing",
    "persistence",
    "naive",
    "mockup",
    "seasonal_naive",
    "theta",
    "autoets",
    "dynamic_optimized_theta",
    "autotheta",
    "autoces",
    "mstl",
)
UNAVAILABLE_MODELS: dict[str, str] = {
    "lstm": "it needs PyTorch, which this build does not ship; use arima, autoets or fbprophet",
}
