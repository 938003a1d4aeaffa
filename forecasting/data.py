"""From CSV bytes to regular series, one per value column (TIMEX's data ingestion, hardened).

Order of steps: read (all cells as text), keep the rows of `column_name_selection == value_selection`,
parse dates (pandas fast path; dateparser only when `dateparser_options` is given or pandas cannot),
sort, average duplicate timestamps, force (resample) or infer the frequency, interpolate gaps in time,
keep `init_datetime`..`end_datetime`, add `<col>_diff` columns (dropping the first row, as TIMEX),
rename (`timeseries_names`). Before pandas reads anything, what is plainly not CSV text (empty, a web page,
a compressed file, UTF-16, binary) is refused and the header is read alone, so the number of columns and
values is bounded first (pandas needs minutes for one line of 100,000 columns). Problems of one column
become `SeriesSet.errors[name]`; problems of the whole request raise `DataError`.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.errors import OutOfBoundsDatetime

from forecasting.config import InputParameters, SelectionParameters, TimexConfig
from forecasting.ns_range import best_unit

# The smallest training window worth fitting; a series needs test points + this many.
MIN_TRAIN_POINTS = 5
_FREQ_VOTE_WINDOWS = 200
# Bounds on what one request's CSV may hold, so a hostile file costs seconds, not minutes or gigabytes.
MAX_COLUMNS = 5_001  # TIMEX_MAX_SERIES (5,000 by default) series and the index column
MAX_CELLS = 10_000_000
_HEADER_BYTES = 1 << 20
_DATEPARSER_MAX, _DATEPARSER_MAX_WITH_FORMATS = 5_000, 100_000
_FIRST_DATE, _LAST_DATE = np.datetime64("0001-01-01", "us"), np.datetime64("9999-12-31T23:59:59", "us")
_UTF8_BOM = b"\xef\xbb\xbf"
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"PK\x03\x04", "zip"),
               (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"7z\xbc\xaf\x27\x1c", "7z"))


class DataError(ValueError):
    """The data as a whole cannot be used (not a CSV, no date column, no usable series)."""


@dataclass
class SeriesSet:
    series: dict[str, pd.Series] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    frequency: str = ""


def _sniff(csv_bytes: bytes) -> None:
    """Refuse, in plain words, what is clearly not a CSV text: before pandas sees it."""
    if not csv_bytes or not csv_bytes.strip():
        raise DataError("the data are empty")
    if csv_bytes.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError("the data are UTF-16 text; save the CSV as UTF-8")
    for magic, kind in _COMPRESSED:
        if csv_bytes.startswith(magic):  # never inflated here: no decompression bomb
            raise DataError(f"the data are a {kind}-compressed file, not a CSV: link or upload the uncompressed CSV")
    head = csv_bytes[:512].removeprefix(_UTF8_BOM).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<!--")):
        raise DataError("the data are a web page (HTML/XML: a login or error page?), not a CSV: check that "
                        "the URL points at the raw CSV file")
    if b"\x00" in csv_bytes[:4096]:
        raise DataError("the data are not a CSV text file (binary content)")


def _header(csv_bytes: bytes) -> tuple[str, list[str]]:
    """(delimiter, column names) from the first line, read without pandas: pandas takes minutes on a
    line of 100,000 columns, so their number is checked first."""
    text = csv_bytes[:_HEADER_BYTES].decode("utf-8-sig", errors="replace")
    try:
        names = next(csv.reader(io.StringIO(text)), [])
        if len(names) == 1:  # ';', tab or '|' instead of ','
            counts = {sep: names[0].count(sep) for sep in ";\t|"}
            sep = max(counts, key=lambda k: counts[k])
            if counts[sep]:
                return sep, next(csv.reader(io.StringIO(text), delimiter=sep))
    except csv.Error as exc:
        raise DataError(f"the first line of the CSV is not a readable header: {exc}") from None
    return ",", names


def _check_shape(csv_bytes: bytes, names: list[str]) -> int:
    """The number of lines (newlines + 1), after refusing too many columns or values or a repeated name."""
    if len(names) > MAX_COLUMNS:
        raise DataError(f"the CSV has {len(names):,} columns; at most {MAX_COLUMNS:,} are supported")
    rows = csv_bytes.count(b"\n") + 1
    if rows * len(names) > MAX_CELLS:
        raise DataError(f"the CSV has about {rows:,} rows x {len(names):,} columns; at most {MAX_CELLS:,} "
                        "values are supported")
    twice = sorted(name for name, count in Counter(n.strip() for n in names).items() if count > 1)
    if twice:
        raise DataError(f"the CSV has more than one column named {twice[0]!r}; column names must be unique")
    return rows


def _read_csv(csv: CheckedCsv, ip: InputParameters) -> pd.DataFrame:
    frame = read_table(csv)
    if ip.columns_to_load_from_url:
        missing = [c for c in ip.columns_to_load_from_url if c not in frame.columns]
        if missing:
            raise DataError(
                f"input_parameters.columns_to_load_from_url: column(s) {missing} not in the CSV; "
                f"it has {shown(frame.columns)}"
            )
        frame = frame[list(ip.columns_to_load_from_url)]
    if frame.shape[1] < 2:
        raise DataError(
            f"the CSV needs a date column and at least one value column; found columns {shown(frame.columns)}"
        )
    if frame.empty:
        raise DataError(f"the CSV has a header ({shown(frame.columns)}) but no data rows")
    return frame


@dataclass(frozen=True)
class CheckedCsv:
    """CSV bytes that passed the checks that keep a hostile file cheap (not CSV text, too many columns or
    values, two columns of one name), with the delimiter and header they found: made once per file by
    `checked`, so that the fast path and the normal path do not scan the bytes twice."""

    data: bytes
    sep: str
    names: list[str]
    lines: int  # newlines + 1


def checked(csv_bytes: bytes) -> CheckedCsv:
    _sniff(csv_bytes)
    sep, names = _header(csv_bytes)
    return CheckedCsv(csv_bytes, sep, names, _check_shape(csv_bytes, names))


def read_table(csv: CheckedCsv) -> pd.DataFrame:
    """Every cell as text."""
    csv_bytes = csv.data
    try:
        frame = pd.read_csv(io.BytesIO(csv_bytes), sep=csv.sep, dtype=str, skipinitialspace=True,
                            encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"the data are not UTF-8 text (byte 0x{csv_bytes[exc.start]:02x} at position "
                        f"{exc.start}): save the CSV as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"the data are not a readable CSV: {_parser_problem(str(exc))}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _parser_problem(text: str) -> str:
    """pandas' tokenizer message in plain words where we know it."""
    if fields := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text):
        expected, line, saw = fields.groups()
        return f"line {line} has {saw} fields but the header has {expected}"
    if "EOF inside string" in text:
        return "a quote (\") is opened and never closed"
    return text.strip()


def shown(columns: Any, most: int = 20) -> str:
    """Column names for a message, shortened when there are many."""
    names = list(columns)
    return str(names) if len(names) <= most else f"{names[:most]} and {len(names) - most} more"


def _select_rows(frame: pd.DataFrame, sel: SelectionParameters | None) -> pd.DataFrame:
    if sel is None or sel.column_name_selection is None:
        return frame
    col = sel.column_name_selection
    if col not in frame.columns:
        raise DataError(f"selection_parameters.column_name_selection: no column '{col}' in the CSV")
    if isinstance(sel.value_selection, (int, float)):
        mask = pd.to_numeric(frame[col], errors="coerce") == sel.value_selection
    else:
        mask = frame[col].str.strip() == str(sel.value_selection).strip()
    if not mask.any():
        raise DataError(f"selection_parameters.value_selection: no row has {col} == {sel.value_selection!r}")
    return frame.loc[mask].drop(columns=[col])


def _dateparser_parse(values: list[str], options: dict[str, Any] | None, column: str,
                      labels: list[Any]) -> list[Any]:
    import dateparser

    # TIMEX's default: a bare month ("2020-03") means its first day.
    opts = dict(options or {})
    opts["settings"] = {"PREFER_DAY_OF_MONTH": "first", **(opts.get("settings") or {})}
    distinct = len(set(values))
    most = _DATEPARSER_MAX_WITH_FORMATS if opts.get("date_formats") else _DATEPARSER_MAX
    if distinct > most:  # ~9 ms a value without date_formats: a hostile file would hold the service for minutes
        raise DataError(
            f"column '{column}': {distinct:,} distinct dates are in a format only dateparser reads, which is slow "
            f"(at most {most:,}); write them as YYYY-MM-DD or give input_parameters.dateparser_options "
            "date_formats, e.g. [\"%d/%m/%Y\"]"
        )
    parsed = {}
    for label, value in zip(labels, values, strict=True):  # stops at the first failure: dateparser is slow
        if value not in parsed:
            # A value without a digit is no date of a time series ("today", "n/a"); refused without
            # dateparser, whose first call spends seconds loading every language.
            parsed[value] = dateparser.parse(value, **opts) if any(c.isdigit() for c in value) else None
            if parsed[value] is None:
                raise DataError(f"column '{column}': cannot parse {value!r} (data row {_row(label)}) as a date")
    return [parsed[v].replace(tzinfo=None) for v in values]


def parse_dates(raw: pd.Series, options: dict[str, Any] | None, column: str) -> pd.DatetimeIndex:
    values, labels = [str(v).strip() for v in raw], list(raw.index)
    if options is not None:
        return best_unit(
            pd.DatetimeIndex(np.array(_dateparser_parse(values, options, column, labels), dtype="datetime64[us]"))
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            index = pd.DatetimeIndex(pd.to_datetime(values))
        if index.tz is not None:
            index = index.tz_convert("UTC").tz_localize(None)
        return index
    except OutOfBoundsDatetime:
        try:  # ISO dates outside the ns range: numpy parses them at microsecond resolution
            return best_unit(pd.DatetimeIndex(np.array(values, dtype="datetime64[us]")))
        except ValueError:
            pass
    except (ValueError, TypeError):
        pass
    return best_unit(
        pd.DatetimeIndex(np.array(_dateparser_parse(values, None, column, labels), dtype="datetime64[us]"))
    )


def numeric_columns(frame: pd.DataFrame, errors: dict[str, str]) -> pd.DataFrame:
    out = {}
    for col in frame.columns:
        text = frame[col].str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        bad = text[numbers.isna() & text.notna() & (text != "")]
        infinite = numbers[np.isinf(numbers)]
        if len(bad):
            errors[col] = (f"non-numeric values, e.g. {bad.iloc[0]!r} at data row {_row(bad.index[0])} "
                           f"({len(bad)} of {len(text)} rows)")
        elif len(infinite):
            errors[col] = f"infinite value {text[infinite.index[0]]!r} at data row {_row(infinite.index[0])}"
        elif numbers.isna().all():
            errors[col] = "no values (all empty/NaN)"
        else:
            out[col] = numbers.astype(float)
    return pd.DataFrame(out, index=frame.index)


def _row(label: Any) -> int:
    """1-based data row (the line after the header is row 1) of an index label of the CSV as read."""
    return int(label) + 1


def _vote_frequency(index: pd.DatetimeIndex) -> str | None:
    """infer_freq fails on any gap; vote among short runs of consecutive points, then check the grid."""
    starts = np.unique(
        np.linspace(0, len(index) - 4, num=min(_FREQ_VOTE_WINDOWS, len(index) - 3)).astype(int)
    )
    votes = Counter(f for i in starts if (f := pd.infer_freq(index[i : i + 4])) is not None)
    for freq, _ in votes.most_common(3):
        grid = pd.date_range(index[0], index[-1], freq=freq, unit=index.unit)
        if index.isin(grid).all():
            return freq
    return None


def _regularize(frame: pd.DataFrame, forced: str | None) -> tuple[pd.DataFrame, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if forced:
            regular = frame.resample(forced).mean()
            return regular, regular.index.freqstr
        index = pd.DatetimeIndex(frame.index)
        if len(index) < 3:
            raise DataError(f"only {len(index)} distinct timestamps: too few to infer a frequency")
        freq = pd.infer_freq(index)
        if freq is None and not (index == index.normalize()).all():
            normalized = index.normalize()
            if normalized.is_unique:
                frame, index = frame.set_axis(normalized), normalized
                freq = pd.infer_freq(index)
        if freq is None and len(index) >= 4:
            freq = _vote_frequency(index)
        if freq is None:
            raise DataError(
                "cannot infer a regular frequency from the dates; set input_parameters.frequency "
                "(e.g. D, W-SUN, MS, h)"
            )
        regular = frame.asfreq(freq)
        return regular, regular.index.freqstr


def _parse_bound(text: str, options: dict[str, Any] | None, name: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(parse_dates(pd.Series([text]), options, name)[0])
    except DataError:
        raise DataError(f"selection_parameters.{name}: cannot parse {text!r} as a date") from None


def _select_dates(
    frame: pd.DataFrame, sel: SelectionParameters | None, options: dict[str, Any] | None
) -> pd.DataFrame:
    if sel is None:
        return frame
    if sel.init_datetime:
        frame = frame.loc[frame.index >= _parse_bound(sel.init_datetime, options, "init_datetime")]
    if sel.end_datetime:
        frame = frame.loc[frame.index <= _parse_bound(sel.end_datetime, options, "end_datetime")]
    if frame.empty:
        raise DataError("selection_parameters: no rows left between init_datetime and end_datetime")
    return frame


def _add_diffs(frame: pd.DataFrame, targets: list[str] | None, errors: dict[str, str]) -> pd.DataFrame:
    if not targets:
        return frame
    frame = frame.copy()
    for target in targets:
        if target in frame.columns:
            frame[f"{target}_diff"] = frame[target].diff()
        elif target not in errors:
            errors[f"{target}_diff"] = f"input_parameters.add_diff_column: no numeric column '{target}'"
    return frame.iloc[1:]


def _usable(series: pd.Series, config: TimexConfig) -> tuple[pd.Series | None, str | None]:
    missing = series.isna().to_numpy()
    if missing.all():
        return None, "no values left after selection (all NaN)"
    trimmed = series
    if missing[0] or missing[-1]:  # NaN at either end: trimmed off (a copy with the frequency kept)
        valid = series.index[~missing]
        trimmed = series.loc[valid[0] : valid[-1]]
        trimmed.index.freq = series.index.freq
    test = config.model_parameters.test_size(len(trimmed))
    if len(trimmed) < test + MIN_TRAIN_POINTS:
        return None, (
            f"only {len(trimmed)} points; needs test_values ({test}) + at least {MIN_TRAIN_POINTS} "
            "training points"
        )
    return trimmed, None


def _listed(errors: dict[str, str], most: int = 10) -> str:
    shown = "; ".join(f"column {name!r}: {problem}" for name, problem in list(errors.items())[:most])
    return shown + (f"; and {len(errors) - most} more" if len(errors) > most else "")


class NotFastError(Exception):
    """`load_series(..., fast_only=True)` for a CSV that needs pandas' path (tens to hundreds of ms even for a
    small file: its caller runs that somewhere it may block)."""


def load_series(config: TimexConfig, csv_bytes: bytes, fast_only: bool = False) -> SeriesSet:
    try:
        return _load_series(config, csv_bytes, fast_only)
    except DataError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        # pandas/numpy refusing something in the data that no check here anticipated: still a problem of
        # these data, said as plainly as we can, rather than an "internal error" of the service.
        raise DataError(f"the data could not be prepared ({type(exc).__name__}: {exc})") from exc


# The fast path (`_small_regular`): a CSV of plain ISO dates and plain decimal numbers, nothing else.
_FAST_MAX_ROWS = 100_000
# Possessive (never backtracks: a digit run is only ever followed by a separator or a point): a third faster.
_FAST_NUMBER = r"-?+\d++(?:\.\d++)?+"
# Digits up to which a decimal's double is the same from pandas' parser and Python's float (`_decimals`).
_EXACT_DIGITS = 15
# Per frequency: the step's numpy unit, and whether each date must be a month's first day.
_FAST_FREQS = {"D": ("D", False), "MS": ("M", True)}
# pandas parses these dates at ns resolution; outside, at us (`best_unit`): the normal path's business.
_FAST_FIRST, _FAST_LAST = np.datetime64("1678-01-01", "D"), np.datetime64("2261-12-31", "D")


def _small_regular(config: TimexConfig, csv: CheckedCsv) -> SeriesSet | None:
    """The series `_load_series` would make, without pandas' reading, parsing and resampling, for the common
    small request: comma-separated, the date column first, every date `YYYY-MM-DD` one day (or one month, on
    first days) after the previous, every value a plain decimal number, and a config that selects, parses and
    adds nothing. None (use the normal path) for anything else. The CSV's checks (`checked`) ran before, so a
    hostile file is refused as on the normal path. Values go through the normal path's `pd.to_numeric`: the
    same floats."""
    ip, sel = config.input_parameters, config.selection_parameters
    if (ip.columns_to_load_from_url or ip.dateparser_options is not None or ip.add_diff_column
            or (sel is not None and any(v is not None for v in (sel.column_name_selection, sel.init_datetime,
                                                                  sel.end_datetime)))):
        return None
    csv_bytes, header = csv.data, csv.names
    if csv.sep != "," or b'"' in csv_bytes or b"\r" in csv_bytes or csv.lines > _FAST_MAX_ROWS + 2:
        return None
    try:
        text = csv_bytes.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None  # the normal path says where
    head, _, body = text.partition("\n")
    names = [n.strip() for n in header]
    date_col = ip.date_column or names[0]
    if len(names) < 2 or date_col != names[0] or not all(names) or head.count(",") != len(names) - 1:
        return None
    body = body if body.endswith("\n") else body + "\n"
    # One pattern over every row at once: a date, then exactly one plain number per value column.
    rows = re.compile(r"(?:\d{4}-\d{2}-\d{2}" + f"(?:,{_FAST_NUMBER})" * (len(names) - 1) + r"\n)++",
                      re.ASCII)  # ASCII digits only: \d would take any script's
    if rows.fullmatch(body) is None:
        return None
    flat = body[:-1].replace("\n", ",").split(",")
    width = len(names)
    dates = flat[::width]
    if len(dates) < 3:
        return None
    freq = ip.frequency or ("MS" if all(d.endswith("-01") for d in dates) else "D")
    if freq not in _FAST_FREQS:
        return None
    unit, first_days = _FAST_FREQS[freq]
    if first_days and not all(d.endswith("-01") for d in dates):
        return None
    try:
        days = np.array(dates, dtype="datetime64[D]")  # refuses 2021-02-30 and the like: the normal path reads it
    except ValueError:
        return None
    steps = np.diff(days.astype(f"datetime64[{unit}]").astype(np.int64))
    if not (steps == 1).all() or not (days[0] >= _FAST_FIRST and days[-1] <= _FAST_LAST):
        return None
    # Daily: generated, as the steps checked above say they are (the constructor checks the frequency again,
    # by inferring it twice); monthly dates have no fixed step to generate them by.
    index = (pd.date_range(start=pd.Timestamp(days[0]), periods=len(days), freq=freq) if freq == "D"
             else pd.DatetimeIndex(days.astype("datetime64[ns]"), freq=freq))
    result = SeriesSet(frequency=index.freqstr)
    rename = ip.timeseries_names or {}
    for i, col in enumerate(names[1:], start=1):
        name = rename.get(col, col)
        if name in result.series or name in result.errors:
            return None  # the normal path says why
        numbers = _decimals(flat[i::width])
        # + 0.0: the normal path's mean over each timestamp turns -0.0 into 0.0 (0.0 + -0.0), nothing else.
        series, problem = _usable(pd.Series(numbers + 0.0, index=index, name=name), config)
        if series is None:
            result.errors[name] = problem or "unusable"
        else:
            result.series[name] = series
    return result if result.series else None


def _decimals(texts: list[str]) -> np.ndarray:
    """Plain decimals (`_FAST_NUMBER`) as the normal path's pandas parser reads them. Of at most 15 digits, Python's
    float gives the same (5x faster): pandas' parser then builds the digits as an exact integer and divides it by an
    exact power of ten, one correctly rounded operation, which is what a correctly rounded parser gives. Longer
    ones go through pandas (it keeps 17 digits and drops the rest, so it can differ from correct rounding)."""
    if max(map(len, texts), default=0) <= _EXACT_DIGITS:  # a sign or a point only makes the digits fewer
        return np.array(texts, dtype=float)
    return pd.to_numeric(pd.Series(texts, dtype=object)).to_numpy(dtype=float)


def _load_series(config: TimexConfig, csv_bytes: bytes, fast_only: bool = False) -> SeriesSet:
    csv = checked(csv_bytes)
    fast = _small_regular(config, csv)
    if fast is None and fast_only:
        raise NotFastError
    return fast if fast is not None else _prepared(config, csv)


def _prepared(config: TimexConfig, csv: CheckedCsv) -> SeriesSet:
    """The normal path: every step of the module docstring, with pandas."""
    ip = config.input_parameters
    frame = _read_csv(csv, ip)
    date_col = ip.date_column or frame.columns[0]
    if date_col not in frame.columns:
        raise DataError(
            f"input_parameters.index_column_name: no date column '{date_col}' in the CSV; "
            f"it has {list(frame.columns)}"
        )
    frame = _select_rows(frame, config.selection_parameters)
    frame = frame.loc[frame[date_col].notna() & (frame[date_col].str.strip() != "")]
    if frame.empty:
        raise DataError(f"column '{date_col}' has no dates")
    index = parse_dates(frame[date_col], ip.dateparser_options, date_col)
    outside = index[(index < _FIRST_DATE) | (index > _LAST_DATE)]
    if len(outside):  # pandas' calendar arithmetic (frequencies, offsets) stops at Python's datetime range
        raise DataError(f"column '{date_col}': dates must lie between the years 1 and 9999; found {outside[0]}")
    errors: dict[str, str] = {}
    values = numeric_columns(frame.drop(columns=[date_col]), errors).set_axis(index)
    if values.shape[1] == 0:
        raise DataError(f"no usable series: {_listed(errors)}")
    # Duplicate timestamps are averaged; groupby also sorts (stable) by time.
    values = values.groupby(level=0, sort=True).mean()
    values, frequency = _regularize(values, ip.frequency)
    values = values.interpolate(method="time", limit_area="inside")
    values = _select_dates(values, config.selection_parameters, ip.dateparser_options)
    values = _add_diffs(values, ip.add_diff_column, errors)
    names = ip.timeseries_names or {}
    result = SeriesSet(frequency=frequency)
    for col in values.columns:
        name = names.get(col, col)
        if name in result.series or name in result.errors:
            raise DataError(f"input_parameters.timeseries_names: two series would be named '{name}'")
        series, problem = _usable(values[col].rename(name), config)
        if series is None:
            result.errors[name] = problem or "unusable"
        else:
            result.series[name] = series
    result.errors.update({names.get(k, k): v for k, v in errors.items()})
    if not result.series:
        raise DataError(f"no usable series: {_listed(result.errors)}")
    return result
