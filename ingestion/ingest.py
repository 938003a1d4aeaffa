"""One ForecastRequest in → Datasets (one per unit of work), Failures and Progress out. Synchronous and
free of Kafka: the service runs it in a thread and produces what it returns."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from forecasting.config import ConfigError, ParsedConfig, TimexConfig, parse_config
from forecasting.data import DataError, load_series
from forecasting.limits import RequestLimits, check_config, check_data, describe
from forecasting.series import to_wire
from forecasting.units import plan_units
from ingestion.download import Allowlist, DownloadError, download
from schemas import Topic
from schemas.topics import DATASETS, FAILURES, PROGRESS
from timex_stream.records import dataset, failure, progress
from timex_stream.settings import Settings

Fetch = Callable[[str], bytes]


@dataclass
class Outcome:
    request_id: str
    datasets: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, Dataset)
    failures: list[dict[str, Any]] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)

    def records(self) -> list[tuple[Topic, str, dict[str, Any]]]:
        """(topic, key, record) in the order followers expect: "accepted", the datasets, the failures,
        then "ingested" with the series list."""
        rid = self.request_id
        return ([(PROGRESS, rid, p) for p in self.progress[:1]] + [(DATASETS, k, d) for k, d in self.datasets]
                + [(FAILURES, rid, f) for f in self.failures] + [(PROGRESS, rid, p) for p in self.progress[1:]])


def fetcher(settings: Settings) -> Fetch:
    allow = Allowlist.parse(settings.url_allowlist)
    return lambda url: download(url, allow, settings.download_max_bytes, settings.download_timeout_s)


def ingest(request: dict[str, Any], fetch: Fetch, limits: RequestLimits | None = None) -> Outcome:
    """Validate, download and plan; the request's limits are checked before downloading (the config) and
    before planning (the data): past one, the request ends with one fatal "limits" Failure and no Dataset."""
    limits = limits or RequestLimits()
    rid = request["request_id"]
    out = Outcome(rid)
    try:
        parsed = parse_config(json.loads(request["config_json"]))
    except json.JSONDecodeError as exc:
        out.failures.append(failure(rid, "config", f"the config is not valid JSON: {exc}", fatal=True))
        return out
    except RecursionError:
        out.failures.append(failure(rid, "config", "the config is JSON nested too deeply to be a TIMEX config",
                                    fatal=True))
        return out
    except ConfigError as exc:
        out.failures.append(failure(rid, "config", str(exc), fatal=True))
        return out
    out.progress.append(accepted(rid, parsed, request.get("replay_of")))
    if over_limits := check_config(parsed.config, limits):
        out.failures.append(failure(rid, "limits", describe(over_limits), fatal=True))
        return out
    try:
        csv = request.get("csv_data") or _fetch_source(parsed.config, fetch)
        series_set = load_series(parsed.config, csv)
    except DownloadError as exc:
        out.failures.append(failure(rid, "download", str(exc), fatal=True))
        return out
    except DataError as exc:
        out.failures.append(failure(rid, "data", str(exc), fatal=True))
        return out
    for name, message in series_set.errors.items():
        out.failures.append(failure(rid, "data", message, series=name))
    return fan_out(out, parsed.config, series_set.series, request.get("replay_of"), limits=limits)


def accepted(rid: str, parsed: ParsedConfig, replay_of: str | None) -> dict[str, Any]:
    return progress(rid, "accepted", "; ".join(f"warning: {w}" for w in parsed.warnings),
                    title=parsed.config.activity_title, replay_of=replay_of)


def fan_out(out: Outcome, config: TimexConfig, series: dict[str, pd.Series], replay_of: str | None,
            note: str = "", limits: RequestLimits | None = None) -> Outcome:
    """Check the request's limits, plan every series' units and add one Dataset per unit, then the
    "ingested" progress record. Past a limit: one fatal "limits" Failure and no Dataset."""
    rid = out.request_id
    limits = limits or RequestLimits()
    if over_limits := check_config(config, limits) or check_data(config, series, limits):
        out.failures.append(failure(rid, "limits", describe(over_limits), fatal=True))
        return out
    planned = _plan(config, series, out, rid)
    if not planned:
        out.failures.append(failure(rid, "data", "no series can be forecast (see the other errors)", fatal=True))
        return out
    config_json = config.to_json()
    for name, units in planned.items():
        timestamps, values, freq = to_wire(series[name])
        out.datasets.extend(dataset(rid, name, len(planned), unit, index, len(units), freq, timestamps, values,
                                    config_json) for index, unit in enumerate(units))
    out.progress.append(progress(rid, "ingested", f"{len(planned)} series, {len(out.datasets)} units{note}",
                                 series_names=sorted(planned), units_total=len(out.datasets),
                                 title=config.activity_title, replay_of=replay_of))
    return out


def _fetch_source(config: TimexConfig, fetch: Fetch) -> bytes:
    url = config.input_parameters.source_data_url
    if not url:
        raise DownloadError("input_parameters.source_data_url: no URL given and no CSV uploaded")
    return fetch(url)


def _plan(config: TimexConfig, series: dict[str, pd.Series], out: Outcome, rid: str) -> dict[str, list]:
    planned = {}
    for name, s in series.items():
        try:
            units = plan_units(config, s)
        except ValueError as exc:
            out.failures.append(failure(rid, "data", str(exc), series=name))
            continue
        if units:
            planned[name] = units
        else:
            out.failures.append(failure(rid, "data", "no unit of work could be planned", series=name))
    return planned


def ingest_safely(request: dict[str, Any], fetch: Fetch, limits: RequestLimits | None = None) -> Outcome:
    """`ingest`, but a bug becomes a Failure for this request instead of killing the service."""
    try:
        return ingest(request, fetch, limits)
    except Exception as exc:
        logging.getLogger("ingestion").exception("ingestion failed")
        rid = request["request_id"]
        return Outcome(rid, failures=[failure(rid, "internal", f"ingestion failed: {exc}", fatal=True)])
