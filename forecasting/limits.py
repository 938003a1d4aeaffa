"""What one request may cost, checked before any work is planned, so no request can take the system down.

`check_config` needs only the config: the ingestion runs it before downloading, the gateway before it answers.
`check_data` needs the loaded series: the ingestion runs it before planning any unit, the gateway on an
uploaded CSV. Both return `FieldError`s whose message names the value, the limit and the environment variable
that sets it, in plain words. The CSV itself is bounded elsewhere: `TIMEX_DOWNLOAD_MAX_BYTES` caps a download,
the gateway's body limit an upload.

Every record a series produces must stay under Kafka's record limit (1,000,000 bytes for the Faust and
librdkafka producers by default). The series itself crosses Kafka once, in chunks of bounded size on the
`series` topic (timex_stream.runtime.series_store), so its length no longer weighs on any other record: units and
predictions point at it, and the answer carries only its last `HISTORY_TAIL_POINTS` for plots. The largest
record is the series' answer (BestModel): that tail, each model's final forecast and one row per scored unit.
`result_bytes` bounds it from above (its constants were sized on the JSON state the validator kept before it
stored each unit under its own key, so the bound is loose); the Dataset and Prediction records are smaller.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from forecasting.tail import HISTORY_TAIL_POINTS

if TYPE_CHECKING:
    import pandas as pd

    from forecasting.config import FieldError, TimexConfig

# Upper bounds, in bytes of the validator's former JSON state (tests/validator/test_record_bound.py checks them on
# real records). A point: a quoted ISO timestamp (26 characters, 27 past the year 9999) and the longest float
# repr (24), with commas.
HISTORY_POINT_BYTES = 56
# One forecast step of one model: its timestamp, yhat and four interval bounds.
FORECAST_STEP_BYTES = 160
# One scored unit (spec, metrics, params: 450-680 bytes measured), with room for an error text.
UNIT_BYTES = 1_000
# One historically predicted point of one model: its timestamp, forecast and actual value.
HISTORICAL_POINT_BYTES = 90
# Keys, counters and names around them; the config is carried JSON-escaped (at most 3 bytes per byte).
RECORD_OVERHEAD_BYTES = 4_000
CONFIG_ESCAPE_FACTOR = 3
# Series named in one message at most: a message about 5000 series must not itself be a huge record.
NAMED_AT_MOST = 3

ENV_VARS: dict[str, str] = {
    "max_prediction_lags": "TIMEX_MAX_PREDICTION_LAGS",
    "max_horizon_ratio": "TIMEX_MAX_HORIZON_RATIO",
    "max_test_values": "TIMEX_MAX_TEST_VALUES",
    "max_series": "TIMEX_MAX_SERIES",
    "max_points_per_series": "TIMEX_MAX_POINTS_PER_SERIES",
    "max_units_per_request": "TIMEX_MAX_UNITS_PER_REQUEST",
    "max_record_bytes": "TIMEX_MAX_RECORD_BYTES",
}


@dataclass(frozen=True)
class RequestLimits:
    """The most one request may ask for; each field is set by the environment variable in `ENV_VARS`."""

    max_prediction_lags: int = 10_000
    # prediction_lags at most this many times the series' length: forecasting far past the data is noise.
    max_horizon_ratio: float = 10.0
    max_test_values: int = 10_000
    max_series: int = 5_000
    # The series crosses Kafka once, chunked; a predictor holds it whole (16 bytes a point: 16 MB here).
    max_points_per_series: int = 1_000_000
    # Units = series × models × transformations × training windows (a small delta_training_percentage
    # means many windows).
    max_units_per_request: int = 50_000
    # The largest record one series may need (its validator state; see `result_bytes`).
    max_record_bytes: int = 1_000_000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RequestLimits:
        """From the variables in `env` (unset or blank: the default). The caller passes the environment:
        `timex_stream.runtime.settings.Settings.from_env` is the one reader of os.environ."""
        values: dict[str, int | float] = {}
        for f in fields(cls):
            var = ENV_VARS[f.name]
            raw = env.get(var, "").strip()
            if raw:
                values[f.name] = _positive(var, raw, float if f.type == "float" else int)
        return cls(**values)  # type: ignore[arg-type]


def _positive(var: str, raw: str, kind: type[int] | type[float]) -> int | float:
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not value > 0 or not math.isfinite(value):
        expected = "a positive integer" if kind is int else "a positive number"
        raise ValueError(f"{var}={raw!r}: expected {expected}")
    return value


def over(value: float, limit: float, env_var: str, context: str = "") -> str:
    """`1000000000 is over the limit of 10000 (TIMEX_MAX_PREDICTION_LAGS)`: the wording of a field's limit."""
    return f"{_number(value)} is over the limit of {_number(limit)}{' ' + context if context else ''} ({env_var})"


def _counted(count: int, what: str, limit: int, per: str, env_var: str) -> str:
    """`4 series, over the limit of 3 series per request (TIMEX_MAX_SERIES)`: the wording of a counted limit."""
    return f"{count} {what}, over the limit of {limit} {what} per {per} ({env_var})"


def result_bytes(points: int, models: int, lags: int, units: int, config_bytes: int) -> int:
    """Upper bound of the largest record a series produces (see the module docstring)."""
    return (min(points, HISTORY_TAIL_POINTS) * HISTORY_POINT_BYTES + models * lags * FORECAST_STEP_BYTES
            + units * UNIT_BYTES + config_bytes * CONFIG_ESCAPE_FACTOR + RECORD_OVERHEAD_BYTES)


def check_config(config: TimexConfig, limits: RequestLimits) -> list[FieldError]:
    """What can be checked before the data are there."""
    mp = config.model_parameters
    errors = []
    if mp.prediction_lags > limits.max_prediction_lags:
        errors.append(_error("model_parameters.prediction_lags", over(
            mp.prediction_lags, limits.max_prediction_lags, ENV_VARS["max_prediction_lags"])))
    if mp.test_values is not None and mp.test_values > limits.max_test_values:
        errors.append(_error("model_parameters.test_values", over(
            mp.test_values, limits.max_test_values, ENV_VARS["max_test_values"])))
    if not errors:  # the final forecasts alone (no history, no unit yet) must fit in one record
        models = len(config.model_names)
        least = result_bytes(0, models, mp.prediction_lags, 0, _config_bytes(config))
        if least > limits.max_record_bytes:
            errors.append(_error("model_parameters.prediction_lags", _record_message(
                least, limits, f"the final forecasts of {models} model(s) × {mp.prediction_lags} prediction_lags",
                "use fewer models or a smaller prediction_lags")))
    return errors


def check_data(config: TimexConfig, series: Mapping[str, pd.Series], limits: RequestLimits,
               regressors: Mapping[str, Sequence[str]] | None = None) -> list[FieldError]:
    """What can be checked once the series are loaded, before any unit is planned. Series too short to be
    planned count no unit (planning reports them). `regressors`: each series' additional regressors, whose
    units (forecasting.units.plan_units) count too, each carrying their names twice (unit and params)."""
    lengths = {name: len(s) for name, s in series.items()}
    errors = _size_errors(config, lengths, limits)
    if errors:  # counting units below is work proportional to the data: not for data already refused
        return errors
    # pandas and the models: not for every importer of limits
    from forecasting.historical import historical_units
    from forecasting.historical_multivariate import units_bound
    from forecasting.models import get_model_class
    from forecasting.units import training_windows

    mp = config.model_parameters
    pairs = sum(len(config.transformations_of(m)) for m in config.model_names)  # (model, transformation)
    taker_pairs = sum(len(config.transformations_of(m)) for m in config.model_names
                      if get_model_class(m).takes_regressors)
    windows = {name: len(training_windows(n, mp.test_size(n), mp.delta_training_percentage))
               for name, n in lengths.items()}
    names = {name: list((regressors or {}).get(name) or ()) for name in lengths}
    with_names = {name: taker_pairs * windows[name] if names[name] else 0
                  for name in lengths}
    past = {name: historical_units(config, s) for name, s in series.items()}  # (units, points predicted)
    # With xcorr, each step may add a multivariate unit per model that takes regressors (TIMEX's stage per step).
    past = {name: (u + units_bound(config, series[name]), p) for name, (u, p) in past.items()}
    units = {name: pairs * windows[name] + with_names[name]
             + past[name][0] for name in lengths}
    # A unit with regressors carries their names in its spec (a JSON list: json.dumps' ASCII escapes are the
    # longest form) and in its params (that list as a JSON string: escaped once more, at most twice as long).
    extra = {name: with_names[name] * 3 * len(json.dumps(names[name])) for name in lengths}
    total = sum(units.values())
    if total > limits.max_units_per_request:
        count = _counted(total, "units of work", limits.max_units_per_request, "request",
                         ENV_VARS["max_units_per_request"])
        steps = " (+ historical steps × models × transformations)" if any(u for u, _ in past.values()) else ""
        errors.append(_error("model_parameters", f"the request needs {count} "
            f"(series × models × transformations × training windows{steps}); use fewer series, models or "
            "transformations, or a larger delta_training_percentage"
            f"{', a later initial_index or a larger delta' if steps else ''}"))
    record = _record_error(config, lengths, units, limits, extra, {name: p for name, (_, p) in past.items()})
    return errors + ([record] if record else [])


def _size_errors(config: TimexConfig, lengths: dict[str, int], limits: RequestLimits) -> list[FieldError]:
    """Series count, points per series and the horizon against each series' length."""
    errors = []
    if len(lengths) > limits.max_series:
        count = _counted(len(lengths), "series", limits.max_series, "request", ENV_VARS["max_series"])
        errors.append(_error("data", f"the data have {count}; load fewer "
            "columns with input_parameters.columns_to_load_from_url"))
    long = {name: n for name, n in lengths.items() if n > limits.max_points_per_series}
    if long:
        name = max(long, key=long.__getitem__)
        count = _counted(long[name], "points", limits.max_points_per_series, "series",
                         ENV_VARS["max_points_per_series"])
        errors.append(_error("data", f"series '{name}' has {count}{_others(long, name)}; keep fewer rows "
                                 "with selection_parameters.init_datetime / end_datetime"))
    lags, ratio = config.model_parameters.prediction_lags, limits.max_horizon_ratio
    short = {name: n for name, n in lengths.items() if lags > ratio * n}
    if short:
        name = min(short, key=short.__getitem__)
        errors.append(_error("model_parameters.prediction_lags", over(
            lags, math.floor(ratio * short[name]), ENV_VARS["max_horizon_ratio"],
            f"for series '{name}', {_number(ratio)} × its {short[name]} points{_others(short, name)}")))
    return errors


def _record_error(config: TimexConfig, lengths: dict[str, int], units: dict[str, int],
                  limits: RequestLimits, extra: dict[str, int], past: dict[str, int] | None = None
                  ) -> FieldError | None:
    """The largest series' record against the limit, blaming the part that weighs most. `extra`: bytes of the
    regressors' names per series; `past`: points predicted historically per series (each model's forecast and
    the actual value of each)."""
    models, lags = len(config.model_names), config.model_parameters.prediction_lags
    config_bytes = _config_bytes(config)
    past = past or {}
    # The validator keeps every transformation's step forecasts until the answer; the answer, the chosen ones.
    per_past_point = models * (HISTORICAL_POINT_BYTES + len(config.transformations) * FORECAST_STEP_BYTES)
    sizes = {name: result_bytes(n, models, lags, units[name], config_bytes) + extra[name]
             + past.get(name, 0) * per_past_point
             for name, n in lengths.items()}
    big = {name: size for name, size in sizes.items() if size > limits.max_record_bytes}
    if not big:
        return None
    name = max(big, key=big.__getitem__)
    parts = {"data": lengths[name] * HISTORY_POINT_BYTES,
             "model_parameters.prediction_lags": models * lags * FORECAST_STEP_BYTES,
             "model_parameters": units[name] * UNIT_BYTES, "additional_regressors": extra[name]}
    return _error(max(parts, key=parts.__getitem__), _record_message(
        big[name], limits, f"series '{name}' ({lengths[name]} points, {models} model(s) × {lags} prediction_lags, "
        f"{units[name]} units of work){_others(big, name)}",
        "use fewer points, models or prediction_lags, or a larger delta_training_percentage"))


def describe(errors: list[FieldError]) -> str:
    """One message for a Failure: the error itself, or a list of them."""
    if len(errors) == 1:
        return str(errors[0])
    return "the request is over its limits:\n" + "\n".join(f"- {e}" for e in errors)


def _record_message(size: int, limits: RequestLimits, what: str, advice: str) -> str:
    return (f"{what} would need a record of up to {size} bytes, over the limit of {limits.max_record_bytes} bytes "
            f"per record ({ENV_VARS['max_record_bytes']}); {advice}")


def _others(found: Mapping[str, object], shown: str) -> str:
    """` (and 2 more: 'b', 'c')`: the other offending series, a few by name."""
    rest = [name for name in found if name != shown]
    if not rest:
        return ""
    names = ", ".join(f"'{n}'" for n in rest[:NAMED_AT_MOST])
    return f" (and {len(rest)} more: {names}{', ...' if len(rest) > NAMED_AT_MOST else ''})"


def _error(field: str, message: str) -> FieldError:
    # Imported here: forecasting.config loads the model libraries (seconds), and every service's Settings
    # imports this module for RequestLimits alone.
    from forecasting.config import FieldError

    return FieldError(field, message)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _config_bytes(config: TimexConfig) -> int:
    return len(config.to_json().encode())
