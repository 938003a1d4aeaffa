"""Additional regressors (TIMEX `additional_regressors`): CSVs of values known for the past and the forecast
horizon (prices set in advance, planned promotions, calendars), one URL per series or `_all` for every series.

As TIMEX 1.2.3 reads them (`ingest_additional_regressors`): the date column is `index_column_name` (here
also `datetime_column_name`) when the CSV has it, else its first column, parsed with `dateparser_options`;
of duplicate dates the last row is kept; every other column is a regressor, and a series gets the columns
of `_all` and then those of its own CSV. Where TIMEX joins them on the series' exact timestamps (a date not
in the CSV becomes a NaN that stops the model), here each regressor is interpolated in time onto the
series' timestamps and the horizon's, and must cover all of them: the whole series (the longest training
window is the whole training part) and `prediction_lags` steps past its end. Anything else is a
`RegressorError` in plain words (with the URL), reported before any unit runs.

The ingestion downloads (`fetch`: its SSRF-guarded downloader), checks and stores each regressor once per
request (timex_stream.runtime.series_store); the predictor aligns the stored values onto the series with `align`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from forecasting.config import TimexConfig
from forecasting.data import DataError, checked, numeric_columns, parse_dates, read_table, shown
from forecasting.ns_range import future_index

ALL = "_all"
# Bounds on what one request may ask for, so a config cannot make the ingestion download for minutes or give
# a model more regressors than it could ever fit on.
MAX_URLS = 20
MAX_PER_SERIES = 100
_MIN_VALUES = 3  # fewer cannot cover a series (which has more) and would not store as one


class RegressorError(ValueError):
    """Additional regressors that cannot be used (download, CSV, coverage); the message names the URL."""


@dataclass
class AdditionalRegressors:
    """The regressors of a request: each column once (`columns`, by a key unique in the request), which
    of them each series uses (`per_series`, in TIMEX's order), the series that cannot be forecast with
    theirs (`errors`: series -> message) and what concerns no series (`notes`: a key naming no series)."""

    columns: dict[str, pd.Series] = field(default_factory=dict)
    per_series: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def names(self, series: str) -> list[str]:
        """The names of the regressors of `series`, as its units name them."""
        return [str(self.columns[key].name) for key in self.per_series.get(series, [])]


def urls_for(config: TimexConfig, name: str) -> list[str]:
    """The regressor CSV URLs of series `name`: `_all`'s, then its own."""
    given = config.additional_regressors or {}
    return [given[k] for k in (ALL, name) if k in given]


def parse(csv_bytes: bytes, config: TimexConfig, url: str) -> dict[str, pd.Series]:
    """A regressor CSV → column name → values (float, sorted DatetimeIndex, no NaN)."""
    ip = config.input_parameters
    try:
        frame = read_table(checked(csv_bytes))
        date_col = ip.date_column if ip.date_column in frame.columns else frame.columns[0]
        if frame.shape[1] < 2:
            raise DataError(f"it needs a date column and at least one regressor column; found columns "
                            f"{shown(frame.columns)}")
        frame = frame.loc[frame[date_col].notna() & (frame[date_col].str.strip() != "")]
        if frame.empty:
            raise DataError(f"column '{date_col}' has no dates")
        index = parse_dates(frame[date_col], ip.dateparser_options, date_col)
        errors: dict[str, str] = {}
        values = numeric_columns(frame.drop(columns=[date_col]), errors).set_axis(index)
    except DataError as exc:
        raise RegressorError(f"the additional regressors at {url} cannot be read: {exc}") from None
    if errors:
        column, problem = next(iter(errors.items()))
        raise RegressorError(f"the additional regressors at {url} cannot be read: column {column!r}: {problem}")
    values = values.sort_index(kind="stable")
    values = values[~values.index.duplicated(keep="last")]  # TIMEX keeps the last row of a date
    columns = {str(col): values[col].dropna().rename(str(col)) for col in values.columns}
    for column, known in columns.items():
        if len(known) < _MIN_VALUES:
            raise RegressorError(f"the additional regressors at {url}: column {column!r} has {len(known)} "
                                 f"value(s); a regressor needs values for the whole series and the horizon")
    return columns


def target_index(series_index: pd.DatetimeIndex, horizon: int) -> pd.DatetimeIndex:
    """Where a series' regressors need values: its timestamps and the `horizon` steps after them."""
    index = pd.DatetimeIndex(series_index)
    return index.append(future_index(index, horizon)) if horizon else index


def align(columns: dict[str, pd.Series], series_index: pd.DatetimeIndex, horizon: int,
          where: dict[str, str] | None = None) -> pd.DataFrame:
    """The regressors on the series' timestamps and the horizon's (interpolated in time, never
    extrapolated); a RegressorError names the first regressor that does not cover them. `where`: name →
    URL, for the message."""
    target = target_index(series_index, horizon)
    out = {}
    for name, values in columns.items():
        both = values.index.union(target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            filled = values.reindex(both).interpolate(method="time", limit_area="inside").reindex(target)
        gap = target[filled.isna().to_numpy()]
        if len(gap):
            source = f" (from {where[name]})" if where and name in where else ""
            raise RegressorError(
                f"the additional regressor {name!r}{source} has no values for {len(gap)} of the "
                f"{len(target)} dates it is needed at, from {gap[0]} to {gap[-1]}: it must cover the whole "
                f"series ({target[0]} to {series_index[-1]}) and the {horizon} forecast steps to {target[-1]}")
        out[name] = filled.to_numpy(dtype=float)
    return pd.DataFrame(out, index=target)


def load(config: TimexConfig, series: dict[str, pd.Series], fetch: Callable[[str], bytes]) -> AdditionalRegressors:
    """Download (each URL once), read and check the regressors of every series. A problem with `_all`'s
    CSV concerns every series: RegressorError; one with a series' own CSV, or its coverage, goes to
    `errors` for that series."""
    given = config.additional_regressors or {}
    out = AdditionalRegressors()
    unknown = sorted(set(given) - set(series) - {ALL})
    urls = list(dict.fromkeys(given[k] for k in given if k not in unknown))
    if len(urls) > MAX_URLS:
        raise RegressorError(f"additional_regressors: {len(urls)} CSV URLs; at most {MAX_URLS} are supported "
                             "per request (use \"_all\" for regressors every series shares)")
    parsed: dict[str, dict[str, pd.Series] | RegressorError] = {}
    for url in urls:
        try:
            data = fetch(url)
        except ValueError as exc:  # the downloader's DownloadError (its SSRF guard's refusals too)
            parsed[url] = RegressorError(f"the additional regressors at {url} cannot be downloaded: {exc}")
            continue
        try:
            parsed[url] = parse(data, config, url)
        except RegressorError as exc:
            parsed[url] = exc
    shared = parsed.get(given[ALL]) if ALL in given else None
    if isinstance(shared, RegressorError):
        raise shared
    keys: dict[tuple[str, str], str] = {}  # (url, column) → key in out.columns, so each is stored once
    for name, s in series.items():
        try:
            out.per_series[name] = _columns_of(config, name, s, parsed, keys, out)
        except RegressorError as exc:
            out.errors[name] = str(exc)
    out.notes += [f"additional_regressors names {name!r}, which is not a series being forecast (series: "
                  f"{shown(sorted(series))}); its regressors are not used" for name in unknown]
    return out


def _columns_of(config: TimexConfig, name: str, s: pd.Series, parsed: dict[str, dict[str, pd.Series] |
                RegressorError], keys: dict[tuple[str, str], str], out: AdditionalRegressors) -> list[str]:
    chosen: dict[str, tuple[str, pd.Series]] = {}
    for url in urls_for(config, name):
        columns = parsed[url]
        if isinstance(columns, RegressorError):
            raise columns
        for column, values in columns.items():
            if column in chosen:
                raise RegressorError(f"two additional regressors of series {name!r} are named {column!r} (in "
                                     f"{chosen[column][0]} and {url}); rename one of the columns")
            chosen[column] = (url, values)
    if len(chosen) > MAX_PER_SERIES:
        raise RegressorError(f"series {name!r} has {len(chosen)} additional regressors; at most {MAX_PER_SERIES} "
                             "are supported")
    align({c: v for c, (_, v) in chosen.items()}, pd.DatetimeIndex(s.index),
          config.model_parameters.prediction_lags, where={c: u for c, (u, _) in chosen.items()})
    used = []
    for column, (url, values) in chosen.items():
        key = keys.setdefault((url, column), f"{len(keys)}")
        out.columns.setdefault(key, values)
        used.append(key)
    return used


def recheck(config: TimexConfig, series: dict[str, pd.Series], columns: dict[str, pd.Series],
            per_series: dict[str, list[str]]) -> AdditionalRegressors:
    """Regressors read back from where a request stored them (a replay of its data), checked again against
    `config`, whose horizon may differ from the original's."""
    out = AdditionalRegressors(columns=columns)
    for name, s in series.items():
        keys = per_series.get(name, [])
        try:
            align({str(columns[k].name): columns[k] for k in keys}, pd.DatetimeIndex(s.index),
                  config.model_parameters.prediction_lags)
        except RegressorError as exc:
            out.errors[name] = str(exc)
        else:
            out.per_series[name] = keys
    return out
