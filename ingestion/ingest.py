"""One ForecastRequest in → Datasets (one per unit of work), Failures and Progress out. Synchronous and
free of Kafka: the service runs it in a thread and produces what it returns."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forecasting.config import ConfigError, TimexConfig, parse_config
from forecasting.data import DataError, load_series
from forecasting.series import to_wire
from forecasting.units import plan_units
from ingestion.download import Allowlist, DownloadError, download
from schemas import series_key
from timex_stream.records import failure, now_ms, progress
from timex_stream.settings import Settings

Fetch = Callable[[str], bytes]


@dataclass
class Outcome:
    datasets: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, Dataset)
    failures: list[dict[str, Any]] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)


def fetcher(settings: Settings) -> Fetch:
    allow = Allowlist.parse(settings.url_allowlist)
    return lambda url: download(url, allow, settings.download_max_bytes, settings.download_timeout_s)


def ingest(request: dict[str, Any], fetch: Fetch) -> Outcome:
    rid = request["request_id"]
    out = Outcome()
    try:
        raw = json.loads(request["config_json"])
        parsed = parse_config(raw)
    except json.JSONDecodeError as exc:
        out.failures.append(failure(rid, "config", f"the config is not valid JSON: {exc}", fatal=True))
        return out
    except ConfigError as exc:
        out.failures.append(failure(rid, "config", str(exc), fatal=True))
        return out
    config = parsed.config
    title = raw.get("activity_title") if isinstance(raw, dict) else None
    out.progress.append(progress(rid, "accepted", "; ".join(f"warning: {w}" for w in parsed.warnings),
                                 title=title, replay_of=request.get("replay_of")))
    try:
        csv = request.get("csv_data") or _fetch_source(config, fetch)
        series_set = load_series(config, csv)
    except DownloadError as exc:
        out.failures.append(failure(rid, "download", str(exc), fatal=True))
        return out
    except DataError as exc:
        out.failures.append(failure(rid, "data", str(exc), fatal=True))
        return out
    for name, message in series_set.errors.items():
        out.failures.append(failure(rid, "data", message, series=name))
    planned = _plan(config, series_set.series, out, rid)
    if not planned:
        out.failures.append(failure(rid, "data", "no series can be forecast (see the other errors)", fatal=True))
        return out
    config_json = config.to_json()
    created = now_ms()
    for name, units in planned.items():
        timestamps, values, freq = to_wire(series_set.series[name])
        for index, unit in enumerate(units):
            out.datasets.append((series_key(rid, name), {
                "request_id": rid, "series": name, "series_total": len(planned),
                "unit": {"model": unit.model, "transformation": unit.transformation, "window": unit.window,
                         "index": index, "total": len(units)},
                "frequency": freq, "timestamps": timestamps, "values": values,
                "config_json": config_json, "created_at": created}))
    out.progress.append(progress(rid, "ingested", f"{len(planned)} series, {len(out.datasets)} units",
                                 series_names=sorted(planned), units_total=len(out.datasets), title=title,
                                 replay_of=request.get("replay_of")))
    return out


def _fetch_source(config: TimexConfig, fetch: Fetch) -> bytes:
    url = config.input_parameters.source_data_url
    if not url:
        raise DownloadError("input_parameters.source_data_url: no URL given and no CSV uploaded")
    return fetch(url)


def _plan(config: TimexConfig, series: dict, out: Outcome, rid: str) -> dict[str, list]:
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


def ingest_safely(request: dict[str, Any], fetch: Fetch) -> Outcome:
    """`ingest`, but a bug becomes a Failure for this request instead of killing the service."""
    try:
        return ingest(request, fetch)
    except Exception as exc:
        logging.getLogger("ingestion").exception("ingestion failed")
        return Outcome(failures=[failure(request["request_id"], "internal", f"ingestion failed: {exc}", fatal=True)])
