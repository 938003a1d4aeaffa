"""One ForecastRequest in → its Outcome (`timex_stream.runtime.fan_out`): validate the config, download the CSV
(and any additional regressors), load the series, then fan them out. Synchronous and free of Kafka: the
service runs it in a thread and publishes the Outcome (`timex_stream.runtime.fan_out.publish`); a small request
whose CSV came with it is ingested on the service's own thread instead (`ingest_inline`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from forecasting.config import ConfigError, TimexConfig, parse_config
from forecasting.data import DataError, NotFastError, load_series
from forecasting.limits import RequestLimits, check_config, describe
from forecasting.live.params import live_request
from forecasting.regressors import RegressorError
from forecasting.regressors import load as load_regressors
from ingestion.download import Allowlist, DownloadError, download
from ingestion.standing import LiveLimits, TopicCheck, standing
from ingestion.url_guard import SOURCE_URL_FIELD
from timex_stream.runtime.fan_out import Outcome, accepted, fan_out
from timex_stream.runtime.fast_lane import eligible
from timex_stream.runtime.records import failure
from timex_stream.runtime.settings import Settings

Fetch = Callable[[str], bytes]
# Config and CSV bytes of a request `ingest_inline` takes: 1,000 daily points are ~20 KB and ingest in ~1 ms
# on forecasting.data's fast path, which such a request must take (pandas' path took 440 ms for 20 KB of
# irregular hourly data with day-first dates).
INLINE_MAX_BYTES = 32 * 1024
# Columns besides the date: each series costs ~0.15 ms to prepare (500 series in 14 KB: 77 ms).
INLINE_MAX_SERIES = 16


class NotInline(Exception):
    """Raised in `ingest(..., inline=True)` where the request would block: it reaches out (a URL, a live
    request's source topic, additional regressors), asks for a feature slow to prepare (cross-correlation,
    historical predictions) or its CSV needs pandas' path; it is ingested in a thread."""


def _offline(_: str) -> Any:
    raise NotInline


def fetcher(settings: Settings) -> Fetch:
    allow = Allowlist.parse(settings.url_allowlist)
    return lambda url: download(url, allow, settings.download_max_bytes, settings.download_timeout_s)


def ingest(request: dict[str, Any], fetch: Fetch, limits: RequestLimits | None = None,
           check_topic: TopicCheck | None = None, live_limits: LiveLimits | None = None,
           fast_lane_work: int = 0, inline: bool = False) -> Outcome:
    """Validate, download and plan; the request's limits are checked before downloading (the config) and
    before planning (the data): past one, the request ends with one fatal "limits" Failure and no Dataset.
    A live request (`source_topic`) becomes a standing record instead (ingestion.standing). A request of at
    most `fast_lane_work` points × models may be answered in place (timex_stream.runtime.fast_lane).
    `inline`: `NotInline` rather than anything that may block for long (`ingest_inline`)."""
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
        live = live_request(parsed.config)
    except ConfigError as exc:
        out.failures.append(failure(rid, "config", str(exc), fatal=True))
        return out
    if live is not None:
        return standing(out, parsed, request, live, fetch, check_topic, live_limits or LiveLimits())
    if inline and _slow_to_prepare(parsed.config):
        raise NotInline
    try:
        csv = request.get("csv_data") or _fetch_source(parsed.config, fetch)
        series_set = load_series(parsed.config, csv, fast_only=inline)
    except NotFastError:
        raise NotInline from None
    except DownloadError as exc:
        out.failures.append(failure(rid, "download", str(exc), fatal=True))
        return out
    except DataError as exc:
        out.failures.append(failure(rid, "data", str(exc), fatal=True))
        return out
    for name, message in series_set.errors.items():
        out.failures.append(failure(rid, "data", message, series=name))
    regressors = None
    if parsed.config.additional_regressors:
        try:
            regressors = load_regressors(parsed.config, series_set.series, _regressor_fetch(fetch))
        except RegressorError as exc:
            out.failures.append(failure(rid, "regressors", str(exc), fatal=True))
            return out
    out = fan_out(out, parsed.config, series_set.series, request.get("replay_of"), limits=limits,
                  regressors=regressors)
    out.in_place = eligible(parsed.config, out.planned, fast_lane_work)
    return out


def _slow_to_prepare(config: TimexConfig) -> bool:
    """Features whose preparation takes tens to hundreds of ms even for a small CSV (measured on 25 KB: the
    cross-correlation of 4 series at every lag 466 ms, the historical steps' planning 20-34 ms), or downloads
    (additional regressors)."""
    return bool(config.xcorr_parameters or config.historical_prediction_parameters or config.additional_regressors)


def _regressor_fetch(fetch: Fetch) -> Fetch:
    """`fetch` for additional regressors: the same guard and limits; its refusals name no source_data_url
    (forecasting.regressors puts the regressor's URL in front)."""
    def regressor_fetch(url: str) -> bytes:
        try:
            return fetch(url)
        except DownloadError as exc:
            raise DownloadError(str(exc).removeprefix(f"{SOURCE_URL_FIELD}: ")) from None
    return regressor_fetch


def _fetch_source(config: TimexConfig, fetch: Fetch) -> bytes:
    url = config.input_parameters.source_data_url
    if not url:
        raise DownloadError("input_parameters.source_data_url: no URL given and no CSV uploaded")
    return fetch(url)


def ingest_safely(request: dict[str, Any], fetch: Fetch, limits: RequestLimits | None = None,
                  check_topic: TopicCheck | None = None, live_limits: LiveLimits | None = None,
                  fast_lane_work: int = 0, inline: bool = False) -> Outcome:
    """`ingest`, but a bug becomes a Failure for this request instead of killing the service."""
    try:
        return ingest(request, fetch, limits, check_topic, live_limits, fast_lane_work, inline)
    except NotInline:
        raise
    except Exception as exc:
        logging.getLogger("ingestion").exception("ingestion failed")
        rid = request["request_id"]
        return Outcome(rid, failures=[failure(rid, "internal", f"ingestion failed: {exc}", fatal=True)])


def ingest_inline(request: dict[str, Any], limits: RequestLimits | None = None,
                  live_limits: LiveLimits | None = None, fast_lane_work: int = 0) -> Outcome | None:
    """`ingest_safely` on the caller's thread (the service's event loop: a thread's hand-off and wake-ups cost
    more than such a request's ingestion) for a request of at most INLINE_MAX_BYTES and INLINE_MAX_SERIES whose
    CSV came with it and takes forecasting.data's fast path. None for any other request, and for one found to
    reach out (a live request checks its source topic, additional regressors are downloaded), to ask for
    cross-correlation or historical predictions, or to need pandas' path for its CSV: the service ingests those
    in a thread, from the start."""
    csv = request.get("csv_data")
    if not csv or len(csv) + len(request["config_json"]) > INLINE_MAX_BYTES:
        return None
    if csv[:csv.find(b"\n")].count(b",") > INLINE_MAX_SERIES:  # a conservative count: quoted commas count too
        return None
    try:
        return ingest_safely(request, _offline, limits, _offline, live_limits, fast_lane_work, inline=True)
    except NotInline:
        return None
