"""Model keywords, importable without the heavy forecasting libraries (the config validator uses them)."""

# TIMEX keywords first, then the models this core adds (statsforecast).
KNOWN_MODELS: tuple[str, ...] = (
    "fbprophet",
    "arima",
    "exponentialsmoothing",
    "persistence",
    "naive",
    "mockup",
    "lstm",
    "seasonal_naive",
    "theta",
    "autoets",
    "dynamic_optimized_theta",
    "autotheta",
    "autoces",
    "mstl",
    "autoets_damped",
)
# Keywords a config may not name, with the reason (none today: `lstm` is a model, its library an optional extra).
UNAVAILABLE_MODELS: dict[str, str] = {}
