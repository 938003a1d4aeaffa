"""TIMEX-compatible JSON configuration, validated with pydantic v2.

Accepts the `timexseries` 1.2.x format as users already have it: comma-separated strings for lists
(`"models": "fbprophet,arima"`), the deprecated aliases TIMEX still reads (`validation_values`,
`datetime_column_name`, ...), `selection_parameters` at top level (TIMEX) or inside `input_parameters`.
Unknown keys are kept (round-trip) and reported as warnings. `TimexConfig.to_json()` gives a normalized
config that is still a valid TIMEX config and parses back to an equal `TimexConfig`.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from forecasting.models.names import KNOWN_MODELS, UNAVAILABLE_MODELS

TRANSFORMATIONS: tuple[str, ...] = ("none", "log", "log_modified", "yeo-johnson", "sqrt")  # sqrt: not TIMEX's
# TIMEX's docs say `yeo-johnson`, its code only understands `yeo_johnson`: accept both.
_TRANSFORMATION_ALIASES: dict[str, str] = {"yeo_johnson": "yeo-johnson", "yeojohnson": "yeo-johnson"}
ACCURACY_ESTIMATORS: tuple[str, ...] = ("mae", "mse", "rmse", "am", "sd", "mape", "smape", "mase")
_DATEPARSER_KEYS = ("date_formats", "languages", "locales", "region", "settings")
# TIMEX sections of which only a part is read here.
# Keys of input_parameters that a live request reads (forecasting.live.params), kept as extras of the section.
LIVE_KEYS = frozenset({"source_topic", "live_parameters"})
# model_parameters.fbprophet_parameters: TIMEX 1.2.3 reads holiday_country and holidays_dataframes there, nothing else.
_PARTLY_USED = {"fbprophet_parameters": "only holiday_country is used (as model_parameters.holidays); TIMEX reads "
                                        "nothing else there either: the rest is kept but not used"}
_MISPLACED = {"fbprophet_parameters": "TIMEX reads it inside model_parameters; here it is kept but not used"}
# Marker that lets a model-level validator name the sub-field it is about (see _to_field_errors).
_FIELD_SEP = " :: "


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ConfigError(ValueError):
    """Invalid configuration; `.errors` names every offending field and what was expected."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("invalid configuration:\n" + "\n".join(f"- {e}" for e in errors))


def _field_error(name: str, message: str) -> ValueError:
    return ValueError(f"{name}{_FIELD_SEP}{message}")


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# A list that TIMEX writes as "a,b,c"; serialized back the same way so the output stays TIMEX-valid.
CommaList = Annotated[
    list[str],
    BeforeValidator(_split_commas),
    PlainSerializer(lambda v: ",".join(v), return_type=str),
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class SelectionParameters(_Section):
    column_name_selection: str | None = None
    value_selection: str | int | float | None = None
    init_datetime: str | None = None
    end_datetime: str | None = None

    @model_validator(mode="after")
    def _pair(self) -> SelectionParameters:
        if (self.column_name_selection is None) != (self.value_selection is None):
            missing = "value_selection" if self.value_selection is None else "column_name_selection"
            raise _field_error(missing, "column_name_selection and value_selection must be given together")
        return self


@functools.lru_cache(maxsize=256)
def _is_frequency(value: str) -> bool:
    """Whether pandas reads `value` as a frequency; remembered: pandas takes ~35 µs to parse one, and a request's
    config is validated four times or more on its way (the ingestion, the pool worker, the decision)."""
    from pandas.tseries.frequencies import to_offset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated aliases ('M', 'H') still work in pandas 2
            to_offset(value)
    except ValueError:
        return False
    return True


class InputParameters(_Section):
    # Optional only for a live request (`source_topic`: the topic's records are the data; forecasting.live).
    source_data_url: str | None = Field(default=None, min_length=1)
    columns_to_load_from_url: CommaList | None = None
    datetime_column_name: str | None = None
    index_column_name: str | None = None
    frequency: str | None = None
    dateparser_options: dict[str, Any] | None = None
    add_diff_column: CommaList | None = None
    timeseries_names: dict[str, str] | None = None
    selection_parameters: SelectionParameters | None = None

    @field_validator("frequency")
    @classmethod
    def _known_frequency(cls, value: str | None) -> str | None:
        if value is not None and not _is_frequency(value):
            raise ValueError(f"'{value}' is not a pandas frequency (e.g. D, W-SUN, MS, QS, YS, h, 15min)")
        return value

    @field_validator("dateparser_options")
    @classmethod
    def _dateparser_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            unknown = sorted(set(value) - set(_DATEPARSER_KEYS))
            if unknown:
                raise ValueError(
                    f"unknown dateparser.parse option(s) {unknown}; expected some of "
                    f"{', '.join(_DATEPARSER_KEYS)}"
                )
        return value

    @model_validator(mode="after")
    def _source_given(self) -> InputParameters:
        if self.source_data_url is None and (self.model_extra or {}).get("source_topic") is None:
            raise _field_error("source_data_url", "required field is missing")
        return self

    @model_validator(mode="after")
    def _one_date_column(self) -> InputParameters:
        a, b = self.datetime_column_name, self.index_column_name
        if a is not None and b is not None and a != b:
            raise _field_error(
                "index_column_name", f"'{b}' differs from datetime_column_name '{a}'; give one date column"
            )
        return self

    @property
    def date_column(self) -> str | None:
        return self.index_column_name or self.datetime_column_name


def _normalize_models(value: list[str]) -> list[str]:
    names = [v.lower() for v in value]
    for name in names:
        if name in UNAVAILABLE_MODELS:
            raise ValueError(f"model '{name}' is not available in this build ({UNAVAILABLE_MODELS[name]})")
        if name not in KNOWN_MODELS:
            raise ValueError(f"unknown model '{name}'; known: {', '.join(KNOWN_MODELS)}")
    return list(dict.fromkeys(names))


def _transformation_names(value: list[str]) -> list[str]:
    names = [_TRANSFORMATION_ALIASES.get(v.lower(), v.lower()) for v in value]
    for name in names:
        if name == "diff":  # TIMEX 1.2.3 lists it, but its Diff cannot run there (apply drops the first point)
            raise ValueError("transformation 'diff' is not offered (TIMEX 1.2.3's differencing cannot run in its "
                             "own pipeline); arima differences the series itself: use none, log, log_modified "
                             "or yeo-johnson")
        if name not in TRANSFORMATIONS:
            raise ValueError(f"unknown transformation '{name}'; known: {', '.join(TRANSFORMATIONS)}")
    return list(dict.fromkeys(names))


def _holidays(value: Any) -> str | list[str] | None:
    """A country code the `holidays` package knows (prophet's add_country_holidays), upper-cased, or a
    list of dates (YYYY-MM-DD or any form pandas reads), normalized to ISO dates."""
    if value is None:
        return None
    if isinstance(value, str):
        import holidays  # a prophet dependency; imported only for configs that ask for holidays

        code = value.strip().upper()
        if code not in holidays.list_supported_countries():
            raise ValueError(f"{value!r} is not a country code the holidays package knows (ISO 3166 codes such "
                             "as US, GB, IT, DE, FR), nor a list of dates")
        return code
    if isinstance(value, list) and value:
        import pandas as pd

        dates = []
        for item in value:
            try:
                dates.append(pd.Timestamp(str(item).strip()).date().isoformat())
            except (ValueError, TypeError, OverflowError):
                raise ValueError(f"{item!r} is not a date; give dates as YYYY-MM-DD") from None
        return sorted(set(dates))
    raise ValueError("expected a country code (e.g. \"US\") or a non-empty list of dates (e.g. "
                     "[\"2023-12-25\", \"2024-12-25\"])")


# trimmed_mean: each step's mean without its highest and lowest member (the mean, for two members).
# rank_weighted_mean: each step's weighted mean, the members weighted by their validation rank (k for the best,
# k - 1 for the next, ..., 1 for the k-th): the hold-out says which member to trust more, without the
# over-reaction of weights from the errors' sizes (M3 monthly, bench/accuracy.py).
COMBINATION_STATISTICS: tuple[str, ...] = ("median", "mean", "trimmed_mean", "rank_weighted_mean")


class CombinationParameters(_Section):
    """Opt-in (not a TIMEX key): the answer is the per-step `statistic` of the forecasts of the `k` models
    that validated best, each model's best unit (forecasting.selection.combine). With `per_transformation`,
    each (model, transformation) pair's best unit is a candidate: a model on logs and on the values are two
    members (each refitted)."""

    k: int = Field(default=3, ge=2)
    statistic: str = "median"
    per_transformation: bool = False

    @field_validator("statistic")
    @classmethod
    def _known_statistic(cls, value: str) -> str:
        if value.lower() not in COMBINATION_STATISTICS:
            raise ValueError(f"unknown statistic '{value}'; known: {', '.join(COMBINATION_STATISTICS)}")
        return value.lower()


class ModelParameters(_Section):
    models: CommaList = Field(min_length=1)
    possible_transformations: CommaList = Field(default_factory=lambda: ["none"], min_length=1)
    main_accuracy_estimator: str = "mae"
    # TIMEX reads validation_values first, test_values (deprecated) when it is absent; the same for percentages.
    test_values: int | None = Field(
        default=None, ge=1, validation_alias=AliasChoices("validation_values", "test_values")
    )
    test_percentage: float | None = Field(
        default=None, gt=0, lt=100, validation_alias=AliasChoices("validation_percentage", "test_percentage")
    )
    delta_training_percentage: float = Field(default=20, gt=0, le=100)
    prediction_lags: int = Field(
        default=10, ge=1, validation_alias=AliasChoices("prediction_lags", "forecast_horizon")
    )
    min_values: dict[str, float] | None = None
    max_values: dict[str, float] | None = None
    round_to_integer: CommaList | None = None
    # fbprophet: a country's holidays by code, or a list of dates; TIMEX's fbprophet_parameters.holiday_country
    # is read as the country code when `holidays` is not given.
    holidays: str | list[str] | None = None
    combination: CombinationParameters | None = None
    # Opt-in (not a TIMEX key): {model: transformations} fits a listed model with its own transformations instead
    # of possible_transformations (M3 monthly: autoces on square roots and logs, the others on values and logs).
    model_transformations: dict[str, CommaList] | None = None
    # Not a TIMEX key (opt-in): false gives TIMEX 1.2.3's arima, a non-seasonal search as its
    # auto_arima(seasonal=False); absent or true: seasonal terms where the series is seasonal.
    arima_seasonal: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _timex_holiday_country(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("holidays") is None:
            country = (data.get("fbprophet_parameters") or {}).get("holiday_country") \
                if isinstance(data.get("fbprophet_parameters"), dict) else None
            if country is not None:
                data = {**data, "holidays": country}
        return data

    @field_validator("holidays", mode="before")
    @classmethod
    def _known_holidays(cls, value: Any) -> str | list[str] | None:
        return _holidays(value)

    @field_validator("arima_seasonal", mode="before")
    @classmethod
    def _arima_seasonal_flag(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false (a JSON boolean), got {value!r}; true (the default): seasonal "
                         "terms where the series is seasonal, false: TIMEX 1.2.3's non-seasonal auto_arima")

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: list[str]) -> list[str]:
        return _normalize_models(value)

    @field_validator("possible_transformations")
    @classmethod
    def _known_transformations(cls, value: list[str]) -> list[str]:
        return _transformation_names(value)

    @field_validator("model_transformations")
    @classmethod
    def _known_model_transformations(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is None:
            return None
        out: dict[str, list[str]] = {}
        for model, names in value.items():
            try:
                key = _normalize_models([model])[0]
                if not names:
                    raise ValueError("give at least one transformation")
                out[key] = _transformation_names(names)
            except ValueError as exc:
                raise _field_error(model, str(exc)) from None
        return out

    @model_validator(mode="after")
    def _model_transformations_of_listed_models(self) -> ModelParameters:
        for model in self.model_transformations or {}:
            if model not in self.models:
                raise _field_error(f"model_transformations.{model}", f"'{model}' is not in models")
        return self

    def transformations_of(self, model: str) -> list[str]:
        """The transformations `model` is fitted with: its `model_transformations` entry, else
        `possible_transformations`."""
        return list((self.model_transformations or {}).get(model, self.possible_transformations))

    @field_validator("main_accuracy_estimator")
    @classmethod
    def _known_estimator(cls, value: str) -> str:
        if value.lower() not in ACCURACY_ESTIMATORS:
            raise ValueError(f"unknown accuracy estimator '{value}'; known: {', '.join(ACCURACY_ESTIMATORS)}")
        return value.lower()

    @model_validator(mode="before")
    @classmethod
    def _no_holiday_files(cls, data: Any) -> Any:
        prophet = data.get("fbprophet_parameters") if isinstance(data, dict) else None
        if isinstance(prophet, dict) and "holidays_dataframes" in prophet:
            raise _field_error("fbprophet_parameters.holidays_dataframes",
                               "holiday CSV files are not read here; give model_parameters.holidays: a country code "
                               "(e.g. \"US\") or a list of dates (e.g. [\"2023-12-25\"])")
        return data

    @model_validator(mode="after")
    def _default_test_size(self) -> ModelParameters:
        # TIMEX (PredictionModel.__init__): a percentage, when given, wins over a number of values (its
        # validation_values becomes -1, "use the percentage"); neither given -> 10 % of the series.
        if self.test_values is not None and self.test_percentage is not None:
            object.__setattr__(self, "test_values", None)
        elif self.test_values is None and self.test_percentage is None:
            object.__setattr__(self, "test_percentage", 10.0)
        return self

    def test_size(self, n_points: int) -> int:
        """Held-out points for a series of `n_points` (TIMEX rounds the percentage, at least one)."""
        if self.test_values is not None:
            return self.test_values
        return max(1, int(round(n_points * (self.test_percentage or 0) / 100)))


XCORR_MODES: tuple[str, ...] = ("pearson", "kendall", "spearman", "matlab_normalized")


class XcorrParameters(_Section):
    """TIMEX's cross-correlation section. Its code reads `xcorr_mode` (comma-separated), its docs say
    `xcorr_modes`: both are accepted (the same list if both are given)."""

    xcorr_max_lags: int = Field(ge=1)
    xcorr_extra_regressor_threshold: float = Field(ge=0, le=1)
    xcorr_mode: CommaList = Field(default_factory=lambda: ["pearson"], min_length=1)
    xcorr_mode_target: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _modes_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "xcorr_modes" in data:
            data = dict(data)
            modes = data.pop("xcorr_modes")
            if "xcorr_mode" in data and _split_commas(data["xcorr_mode"]) != _split_commas(modes):
                raise _field_error("xcorr_modes", "differs from xcorr_mode; give one list of modes")
            data["xcorr_mode"] = modes
        return data

    @field_validator("xcorr_mode")
    @classmethod
    def _known_modes(cls, value: list[str]) -> list[str]:
        names = [v.lower() for v in value]
        for name in names:
            if name == "granger":
                raise ValueError("cross-correlation mode 'granger' (TIMEX 1.2.3's Granger causality tests) is not "
                                 f"offered here; use {', '.join(XCORR_MODES)}")
            if name not in XCORR_MODES:
                raise ValueError(f"unknown cross-correlation mode '{name}'; known: {', '.join(XCORR_MODES)}")
        return list(dict.fromkeys(names))

    @model_validator(mode="after")
    def _target_is_computed(self) -> XcorrParameters:
        target = (self.xcorr_mode_target or self.xcorr_mode[0]).lower()
        if target not in self.xcorr_mode:
            raise _field_error("xcorr_mode_target", f"'{target}' is not one of the computed modes "
                               f"({', '.join(self.xcorr_mode)})")
        object.__setattr__(self, "xcorr_mode_target", target)
        return self


class HistoricalPredictionParameters(_Section):
    """TIMEX's historical predictions (forecasting.historical): from `initial_index` on, every `delta` points,
    what each model would have forecast with the data known then."""

    # A date, as TIMEX reads it (with input_parameters.dateparser_options), or a 0-based position.
    initial_index: int | str
    # TIMEX pickles its progress there; here the historical predictions are kept with the results instead.
    save_path: str | None = None
    delta: int = Field(default=1, ge=1)

    @field_validator("initial_index")
    @classmethod
    def _position_or_date(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("a position must be 0 or more (or give a date, as TIMEX does)")
        if isinstance(value, str) and not value.strip():
            raise ValueError("give the date (or the 0-based position) of the first historical step")
        return value


LANGUAGES: tuple[str, ...] = ("en", "it")  # the languages TIMEX's charts come in


# TIMEX's box plots: the periods of the box plot and the groupings of the aggregate one (its buttons), in order.
BOX_PLOT_FREQUENCIES: tuple[str, ...] = ("1W", "2W", "1M", "3M", "4M", "6M", "1Y")
AGGREGATE_BOX_PLOT_FREQUENCIES: tuple[str, ...] = ("minute", "hour", "weekday", "day", "month", "year")


class VisualizationParameters(_Section):
    """How the charts are drawn, TIMEX's keys: the language, the graph's threshold, and which period of the box plot
    and which grouping of the aggregate box plot are shown first (the others are a button away)."""

    language: str = "en"
    # Edges of the cross-correlation graph: series whose peak |correlation| is above this. TIMEX's graph
    # function defaults to 0 (every series linked).
    xcorr_graph_threshold: float = Field(default=0.0, ge=0.0, le=1.0)
    box_plot_frequency: str = "1W"
    aggregate_box_plot_frequency: str = "weekday"

    @field_validator("language", mode="before")
    @classmethod
    def _known_language(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in LANGUAGES:
            return value.strip().lower()
        raise ValueError(f"{value!r} is not a language the charts come in; use one of {', '.join(LANGUAGES)}")

    @field_validator("box_plot_frequency")
    @classmethod
    def _known_period(cls, value: str) -> str:
        if value not in BOX_PLOT_FREQUENCIES:
            raise ValueError(f"{value!r} is not a period of the box plot; use one of {', '.join(BOX_PLOT_FREQUENCIES)}")
        return value

    @field_validator("aggregate_box_plot_frequency")
    @classmethod
    def _known_grouping(cls, value: str) -> str:
        if value not in AGGREGATE_BOX_PLOT_FREQUENCIES:
            raise ValueError(f"{value!r} is not a grouping of the aggregate box plot; use one of "
                             f"{', '.join(AGGREGATE_BOX_PLOT_FREQUENCIES)}")
        return value

    def for_charts(self) -> dict[str, Any]:
        """What the answer carries to the charts (the Avro `VisualizationParameters`)."""
        return {"language": self.language, "xcorr_graph_threshold": self.xcorr_graph_threshold,
                "box_plot_frequency": self.box_plot_frequency,
                "aggregate_box_plot_frequency": self.aggregate_box_plot_frequency}


LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class TimexConfig(_Section):
    activity_title: str | None = None
    # TIMEX's app sets its log level from it; here the services log the request's own lines at it
    # (timex_stream.runtime.logs; DEBUG adds the predictor's line of each unit's fit and metrics).
    verbose: str | None = None
    input_parameters: InputParameters
    selection_parameters: SelectionParameters | None = None
    model_parameters: ModelParameters
    max_threads: int | None = Field(default=None, ge=1)
    visualization_parameters: VisualizationParameters = Field(default_factory=VisualizationParameters)
    xcorr_parameters: XcorrParameters | None = None
    # TIMEX: series name (or "_all", for every series) -> URL of a CSV of regressors known for the past and
    # the forecast horizon (forecasting.regressors)
    additional_regressors: dict[str, str] | None = None
    historical_prediction_parameters: HistoricalPredictionParameters | None = None

    @field_validator("verbose")
    @classmethod
    def _log_level(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in LOG_LEVELS:
            raise ValueError(f"expected a log level, one of {', '.join(LOG_LEVELS)}; got {value!r}")
        return value

    @field_validator("additional_regressors")
    @classmethod
    def _regressor_urls(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one \"series name\": \"CSV URL\" pair (\"_all\" for every series)")
        for name, url in value.items():
            if not url.strip():
                raise _field_error(name, "the CSV URL is empty")
        return {name: url.strip() for name, url in value.items()}

    @model_validator(mode="before")
    @classmethod
    def _hoist_selection(cls, data: Any) -> Any:
        # TIMEX reads selection_parameters at top level; the issue text puts it in input_parameters.
        if isinstance(data, dict) and isinstance(data.get("input_parameters"), dict):
            inner = data["input_parameters"].get("selection_parameters")
            if inner is not None and data.get("selection_parameters") is None:
                data = dict(data)
                data["input_parameters"] = {
                    k: v for k, v in data["input_parameters"].items() if k != "selection_parameters"
                }
                data["selection_parameters"] = inner
        return data

    @property
    def model_names(self) -> list[str]:
        return list(self.model_parameters.models)

    @property
    def transformations(self) -> list[str]:
        """Every transformation some model is fitted with, in spec order: possible_transformations, then those
        only `model_transformations` names."""
        mp = self.model_parameters
        extra = [t for names in (mp.model_transformations or {}).values() for t in names]
        return list(dict.fromkeys([*mp.possible_transformations, *extra]))

    def transformations_of(self, model: str) -> list[str]:
        return self.model_parameters.transformations_of(model)

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


@dataclass
class ParsedConfig:
    config: TimexConfig
    warnings: list[str] = field(default_factory=list)


def _to_field_errors(err: ValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for item in err.errors():
        loc = [str(part) for part in item["loc"]]
        message = item["msg"].removeprefix("Value error, ")
        if _FIELD_SEP in message:
            sub, message = message.split(_FIELD_SEP, 1)
            loc.append(sub)
        if item["type"] == "missing":
            message = "required field is missing"
        out.append(FieldError(".".join(loc), message))
    return out


def _unknown_key_warnings(section: BaseModel, prefix: str) -> list[str]:
    found: list[str] = []
    for key in sorted(section.model_extra or {}):
        where = f"{prefix}{key}"
        if isinstance(section, InputParameters) and key in LIVE_KEYS:
            continue  # read and validated by forecasting.live.params.live_request (the ingestion calls it)
        if key in _PARTLY_USED and isinstance(section, ModelParameters):
            found.append(f"{where}: {_PARTLY_USED[key]}")
        elif key in _MISPLACED:
            found.append(f"{where}: {_MISPLACED[key]}")
        else:
            found.append(f"{where}: unknown key; kept but not used")
    for name in type(section).model_fields:
        child = getattr(section, name)
        if isinstance(child, BaseModel):
            found += _unknown_key_warnings(child, f"{prefix}{name}.")
    return found


def parse_config(raw: dict[str, Any] | str | bytes) -> ParsedConfig:
    """Validate a TIMEX JSON config; raise `ConfigError` listing every problem."""
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([FieldError("", f"not valid JSON: {exc}")]) from None
    if not isinstance(raw, dict):
        raise ConfigError([FieldError("", f"expected a JSON object, got {type(raw).__name__}")])
    notes: list[str] = []
    mp = raw.get("model_parameters")
    if isinstance(mp, dict) and any(mp.get(k) is not None for k in ("test_values", "validation_values")) \
            and any(mp.get(k) is not None for k in ("test_percentage", "validation_percentage")):
        notes.append("model_parameters.test_values: not used because test_percentage is given (TIMEX's rule)")
    try:
        config = TimexConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_to_field_errors(exc)) from None
    hp = config.historical_prediction_parameters
    if hp is not None and hp.save_path is not None:
        # No ";": the ingestion joins warnings with "; " and readers split them there.
        notes.append("historical_prediction_parameters.save_path: the historical predictions are kept with the "
                     "results (no file is written on the server)")
    return ParsedConfig(config=config, warnings=notes + _unknown_key_warnings(config, ""))


@functools.lru_cache(maxsize=128)
def config_from_json(config_json: str) -> TimexConfig:
    """A normalized config shipped between services (`TimexConfig.to_json()`), parsed once per process:
    every unit of a request carries the same text. Treat the result as read-only: it is shared."""
    return parse_config(config_json).config
