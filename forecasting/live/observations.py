"""One record of a live request's source topic -> the observations it holds, or a `BadObservation` saying
what was wrong and where in the record (`key`, `value`, `value.<field>`).

Three formats (`record_format` "auto" tells them apart as below; "wide", "long", "avro" force one):

- **avro**: the value is an Avro single-object encoded `Observation` (`schemas/timex.Observation.avsc`:
  series, timestamp as UTC microseconds, value), as every record of this build is encoded (its first two bytes
  are 0xC3 0x01). The key is not read.
- **long**: a JSON object `{"series": "sales", "timestamp": "2026-01-01", "value": 3.0}`, or
  `{"timestamp": ..., "value": ...}` with the series name as the record key (UTF-8). A `series` field wins
  over the key (the key may be a partitioning key). "auto" reads a JSON object as long when its fields are
  exactly timestamp and value (plus series), and either `series` is there or there is a key and the config's
  date column is not called "timestamp" (then it is a wide row with one column, "value").
- **wide**: a JSON object like one CSV line, `{"date": "2026-01-01", "sales": 3.0, "visitors": 12}`: the
  config's date column (`index_column_name`, else `datetime_column_name`, else "date") and one value per
  series; a null or "" value is a missing cell (no observation for that series).

Timestamps are strings, read as the CSV's dates are (`forecasting.data.parse_dates`, with the config's
`dateparser_options`; an offset is converted to UTC, then dropped). Values are JSON numbers or numeric strings
(a CSV cell is text), finite; booleans, lists, objects, non-numeric strings, NaN and Infinity are refused.
A record over `MAX_RECORD_BYTES` (key + value) is refused before it is parsed.

The config applies as to a CSV: `columns_to_load_from_url` keeps only the listed series (others give no
observation), `timeseries_names` renames them, `selection_parameters` keeps only the wide rows whose
`column_name_selection` is `value_selection` (that column is no series) and only the timestamps between
`init_datetime` and `end_datetime` (both with `forecasting.data`'s own functions). `min_values`,
`max_values` and `round_to_integer` apply to the forecasts, as for a CSV (forecasting.live.models).
`add_diff_column` is refused for live requests for now (forecasting.live.params): a diff series needs the
previous regular point, which only the window knows.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forecasting.config import TimexConfig
from forecasting.data import DataError, _select_dates, _select_rows, parse_dates
from schemas.codec import CODEC, MAGIC, DecodeError

# A record holds one row: even a wide one of 5,000 series (the CSV's bound) with long names fits in this.
MAX_RECORD_BYTES = 256 * 1024
RECORD_FORMATS: tuple[str, ...] = ("auto", "wide", "long", "avro")
_LONG_FIELDS = frozenset({"timestamp", "value"})
# ISO 8601 dates and times (optionally with an offset): what pd.Timestamp reads exactly as parse_dates does.
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?")


@dataclass(frozen=True)
class Observation:
    series: str
    timestamp: pd.Timestamp
    value: float


class BadObservation(ValueError):
    """A record that gives no usable observation: `where` in the record, `reason` what was wrong."""

    def __init__(self, where: str, reason: str) -> None:
        self.where, self.reason = where, reason
        super().__init__(f"{where}: {reason}")


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def _json_object(value: bytes) -> dict[str, Any]:
    try:
        # Decoded here: json.loads would guess UTF-16/32 from the first bytes.
        parsed = json.loads(value.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise BadObservation("value", f"not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:  # JSONDecodeError is one
        raise BadObservation("value", f"not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise BadObservation("value", f"expected a JSON object, got {type(parsed).__name__}")
    return parsed


def _number(raw: Any, where: str) -> float | None:
    """A finite float, None for a missing cell (null, ""), else BadObservation."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise BadObservation(where, f"expected a number, got {type(raw).__name__} {json.dumps(raw)[:40]}")
    try:
        number = float(raw)
    except (ValueError, OverflowError):
        raise BadObservation(where, f"not a number: {raw!r}"[:80]) from None
    if not math.isfinite(number):
        raise BadObservation(where, f"not a finite number: {raw!r}"[:80])
    return number


class ObservationReader:
    """Decodes the records of one live request (its config read once)."""

    def __init__(self, config: TimexConfig, record_format: str = "auto") -> None:
        if record_format not in RECORD_FORMATS:
            raise ValueError(f"record_format {record_format!r}; expected one of {', '.join(RECORD_FORMATS)}")
        ip = config.input_parameters
        self.format = record_format
        self.date_column = ip.date_column or "date"
        self.options = ip.dateparser_options
        self.selected = None if not ip.columns_to_load_from_url else frozenset(ip.columns_to_load_from_url)
        self.names = dict(ip.timeseries_names or {})
        self.selection = config.selection_parameters

    def read(self, key: bytes | None, value: bytes | None) -> list[Observation]:
        size = len(key or b"") + len(value or b"")
        if size > MAX_RECORD_BYTES:
            raise BadObservation("value", f"{size:,} bytes; a record may hold at most {MAX_RECORD_BYTES:,}")
        if not value:
            raise BadObservation("value", "empty (a tombstone or an empty message)")
        if self.format == "avro" or (self.format == "auto" and value[:2] == MAGIC):
            return self._avro(value)
        record = _json_object(value)
        if self.format == "long" or (self.format == "auto" and self._looks_long(key, record)):
            return self._long(key, record)
        return self._wide(record)

    def _looks_long(self, key: bytes | None, record: dict[str, Any]) -> bool:
        fields = set(record)
        if "series" in fields:
            return fields - {"series"} == _LONG_FIELDS
        return fields == _LONG_FIELDS and key is not None and self.date_column != "timestamp"

    def _avro(self, value: bytes) -> list[Observation]:
        try:
            record = CODEC.decode_as("Observation", value)
        except DecodeError as exc:
            raise BadObservation("value", f"not an Avro Observation: {exc}") from None
        stamp = pd.Timestamp(record["timestamp"])
        stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp
        try:
            stamp = stamp.as_unit("ns")  # the grid's arithmetic is in ns, as a CSV's dates are
        except (ValueError, OverflowError):
            raise BadObservation("value.timestamp", f"{stamp.isoformat()} is outside the dates a series may have "
                                 f"({pd.Timestamp.min.year + 1}-{pd.Timestamp.max.year - 1})") from None
        number = _number(record["value"], "value.value")
        return self._kept(record["series"], stamp, number)

    def _long(self, key: bytes | None, record: dict[str, Any]) -> list[Observation]:
        missing = sorted(_LONG_FIELDS - set(record))
        if missing:
            raise BadObservation("value", f"a long record needs timestamp and value; {', '.join(missing)} missing")
        extra = sorted(set(record) - _LONG_FIELDS - {"series"})
        if extra:
            raise BadObservation("value", f"unexpected field(s) {extra} in a long record (series, timestamp, value)")
        series = record.get("series")
        if series is None:
            if key is None:
                raise BadObservation("key", "no series: give a \"series\" field or the series name as the key")
            try:
                series = key.decode("utf-8")
            except UnicodeDecodeError:
                raise BadObservation("key", "the series name (the key) is not UTF-8 text") from None
        elif not isinstance(series, str):
            raise BadObservation("value.series", f"expected a string, got {type(series).__name__}")
        if not series.strip():
            raise BadObservation("value.series" if "series" in record else "key", "the series name is empty")
        stamp = self._timestamp(record["timestamp"], "value.timestamp")
        number = _number(record["value"], "value.value")
        return self._kept(series, stamp, number)

    def _wide(self, record: dict[str, Any]) -> list[Observation]:
        if self.date_column not in record:
            raise BadObservation("value", f"no date column {self.date_column!r} (input_parameters.index_column_name)"
                                          f" in the row; it has {sorted(record)[:10]}")
        stamp = self._timestamp(record[self.date_column], f"value.{self.date_column}")
        cells = {k: v for k, v in record.items() if k != self.date_column}
        if self.selection is not None and self.selection.column_name_selection is not None:
            column = self.selection.column_name_selection
            if not self._row_selected(cells.get(column)):
                return []
            cells.pop(column, None)
        if not cells:
            raise BadObservation("value", f"a row with its date column {self.date_column!r} and no value column")
        if self.selected is not None:
            cells = {k: v for k, v in cells.items() if k in self.selected}
        numbers = {name: _number(raw, f"value.{name}") for name, raw in cells.items()}
        return [obs for name, number in numbers.items() for obs in self._kept(name, stamp, number, selected=True)]

    def _row_selected(self, raw: Any) -> bool:
        """selection_parameters' row filter, by the CSV's own function on a one-row table of text."""
        if raw is None or isinstance(raw, (dict, list)):
            return False
        text = str(raw).lower() if isinstance(raw, bool) else str(raw)
        column = str(self.selection.column_name_selection)  # type: ignore[union-attr]
        try:
            return len(_select_rows(pd.DataFrame({column: [text]}), self.selection)) == 1
        except DataError:
            return False

    def _timestamp(self, raw: Any, where: str) -> pd.Timestamp:
        if not isinstance(raw, str) or not raw.strip():
            shown = json.dumps(raw)[:40] if not isinstance(raw, str) else "an empty string"
            raise BadObservation(where, f"expected a date as a string (e.g. \"2026-01-01T10:00:00Z\"), got {shown}")
        if self.options is None and _ISO.fullmatch(text := raw.strip()):
            # The common case without pandas' format inference (~1 ms a record): parse_dates gives the same.
            try:
                stamp = pd.Timestamp(text)
                return (stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp).as_unit("ns")
            except (ValueError, OverflowError):
                pass  # e.g. outside the ns range: parse_dates' own fallbacks
        try:
            return pd.Timestamp(parse_dates(pd.Series([raw]), self.options, where)[0])
        except (DataError, ValueError, OverflowError):
            raise BadObservation(where, f"cannot read {raw[:40]!r} as a date") from None

    def _kept(self, series: str, stamp: pd.Timestamp, number: float | None, selected: bool = False
              ) -> list[Observation]:
        """The observation, if the config keeps it (series selected, inside the dates), renamed."""
        if number is None:
            return []
        if not selected and self.selected is not None and series not in self.selected:
            return []
        if self.selection is not None and (self.selection.init_datetime or self.selection.end_datetime):
            try:
                _select_dates(pd.DataFrame({"v": [number]}, index=pd.DatetimeIndex([stamp])), self.selection,
                              self.options)
            except DataError:
                return []
        return [Observation(self.names.get(series, series), stamp, number)]


def read_observations(config: TimexConfig, key: bytes | None, value: bytes | None,
                      record_format: str = "auto") -> list[Observation]:
    """`ObservationReader(config, record_format).read(key, value)`, for one record."""
    return ObservationReader(config, record_format).read(key, value)
