"""One ForecastRequest in → the prepared series and config (SeriesParts, published once), Datasets (one per
unit of work, pointing at them), Failures and Progress out. Synchronous and free of Kafka: the service runs
it in a thread, produces the SeriesParts first and builds the Datasets from where those landed."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from forecasting.config import ConfigError, ParsedConfig, TimexConfig, parse_config
from forecasting.data import DataError, load_series
from forecasting.historical import first_known, plan_all
from forecasting.limits import RequestLimits, check_config, check_data, describe
from forecasting.regressors import AdditionalRegressors, RegressorError
from forecasting.regressors import load as load_regressors
from forecasting.units import UnitSpec, batches
from forecasting.xcorr import request_xcorr
from ingestion.download import Allowlist, DownloadError, download
from ingestion.url_guard import SOURCE_URL_FIELD
from schemas import Topic
from schemas.topics import FAILURES, PROGRESS, SERIES
from timex_stream.records import dataset, failure, progress
from timex_stream.series_store import config_part, parts, regressor_parts, series_ref
from timex_stream.settings import Settings

Fetch = Callable[[str], bytes]


@dataclass
class Planned:
    """One series' units, waiting for where its SeriesParts land."""

    name: str
    units: list[UnitSpec]
    parts: int  # how many SeriesParts (chunks) it has in `Outcome.stored`
    points: int
    regressors: list[str] = field(default_factory=list)  # keys of its additional regressors in `Outcome.columns`
    historical_from: int = 0  # points known at the first historical step (0: none asked)


@dataclass
class Outcome:
    request_id: str
    failures: list[dict[str, Any]] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)
    # (key, SeriesPart): the config first, then each additional regressor's chunks in `columns` order, then
    # each planned series' chunks in `planned` order.
    stored: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)
    # additional regressors, each stored once for all the series that use it: key → (name, chunks)
    columns: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def units(self) -> int:
        return sum(len(p.units) for p in self.planned)

    def first(self) -> list[tuple[Topic, str, dict[str, Any]]]:
        """(topic, key, record) to produce before the datasets: "accepted", then the SeriesParts."""
        rid = self.request_id
        return [(PROGRESS, rid, p) for p in self.progress[:1]] + [(SERIES, k, r) for k, r in self.stored]

    def datasets(self, positions: list[tuple[int, int]]) -> list[tuple[str, dict[str, Any]]]:
        """(key, Dataset) of every unit (cheap ones batched), given where each record of `stored` landed
        (partition, offset)."""
        if len(positions) != len(self.stored):
            raise ValueError(f"{len(positions)} positions for {len(self.stored)} stored records")
        out, at = [], 1
        partition, config_offset = positions[0] if positions else (0, 0)
        stored_at: dict[str, tuple[str, list[int]]] = {}
        for key, (name, chunks) in self.columns.items():
            stored_at[key] = (name, [o for _, o in positions[at:at + chunks]])
            at += chunks
        for p in self.planned:
            ref = series_ref(partition, config_offset, [o for _, o in positions[at:at + p.parts]], p.points,
                             [stored_at[key] for key in p.regressors], p.historical_from)
            at += p.parts
            for group in batches(p.units, p.points):  # cheap units of a series travel together
                first, *more = group
                out.append(dataset(self.request_id, p.name, len(self.planned), p.units[first], first, len(p.units),
                                   ref, more=[(p.units[i], i) for i in more]))
        return out

    def after(self) -> list[tuple[Topic, str, dict[str, Any]]]:
        """(topic, key, record) to produce after the datasets: the failures, then "ingested"."""
        rid = self.request_id
        return [(FAILURES, rid, f) for f in self.failures] + [(PROGRESS, rid, p) for p in self.progress[1:]]


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
    regressors = None
    if parsed.config.additional_regressors:
        try:
            regressors = load_regressors(parsed.config, series_set.series, _regressor_fetch(fetch))
        except RegressorError as exc:
            out.failures.append(failure(rid, "regressors", str(exc), fatal=True))
            return out
    return fan_out(out, parsed.config, series_set.series, request.get("replay_of"), limits=limits,
                   regressors=regressors)


def accepted(rid: str, parsed: ParsedConfig, replay_of: str | None) -> dict[str, Any]:
    return progress(rid, "accepted", "; ".join(f"warning: {w}" for w in parsed.warnings),
                    title=parsed.config.activity_title, replay_of=replay_of,
                    visualization=parsed.config.visualization_parameters.for_charts())


def fan_out(out: Outcome, config: TimexConfig, series: dict[str, pd.Series], replay_of: str | None,
            note: str = "", limits: RequestLimits | None = None, regressors: AdditionalRegressors | None = None
            ) -> Outcome:
    """Check the request's limits, plan every series' units and add one Dataset per unit, then the
    "ingested" progress record. Past a limit: one fatal "limits" Failure and no Dataset. `regressors`:
    the series' additional regressors (a series whose regressors cannot be used is not forecast)."""
    rid = out.request_id
    limits = limits or RequestLimits()
    regressors = regressors or AdditionalRegressors()
    names = {name: regressors.names(name) for name in series}
    if over_limits := check_config(config, limits) or check_data(config, series, limits, names):
        out.failures.append(failure(rid, "limits", describe(over_limits), fatal=True))
        return out
    for name, message in regressors.errors.items():
        out.failures.append(failure(rid, "regressors", message, series=name))
    out.failures += [failure(rid, "regressors", note) for note in regressors.notes]
    usable = {name: s for name, s in series.items() if name not in regressors.errors}
    planned = _plan(config, usable, out, rid, regressors)
    if not planned:
        out.failures.append(failure(rid, "data", "no series can be forecast (see the other errors)", fatal=True))
        return out
    out.stored.append(config_part(rid, config.to_json()))
    # Where every series is known, once per request: each series' share travels with its prepared data.
    xcorr, xcorr_warning = request_xcorr(config, {name: series[name] for name in planned})
    if xcorr_warning:
        out.failures.append(failure(rid, "xcorr", xcorr_warning))
    used = list(dict.fromkeys(key for name in planned for key in regressors.per_series.get(name, [])))
    for key in used:
        chunks = regressor_parts(rid, regressors.columns[key])
        out.stored.extend(chunks)
        out.columns[key] = (str(regressors.columns[key].name), len(chunks))
    for name, (units, known) in planned.items():
        chunks = parts(rid, name, len(planned), series[name],
                       xcorr_json=xcorr[name].to_json() if name in xcorr else None)
        out.stored.extend(chunks)
        out.planned.append(Planned(name, units, len(chunks), len(series[name]),
                                   regressors.per_series.get(name, []), known))
    out.progress.append(progress(rid, "ingested", f"{len(planned)} series, {out.units} units{note}",
                                 series_names=sorted(planned), units_total=out.units,
                                 title=config.activity_title, replay_of=replay_of))
    return out


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


def _plan(config: TimexConfig, series: dict[str, pd.Series], out: Outcome, rid: str,
          regressors: AdditionalRegressors) -> dict[str, tuple[list[UnitSpec], int]]:
    """Per series its units (the ordinary ones, then the historical ones) and the points known at the first
    historical step."""
    planned = {}
    for name, s in series.items():
        try:
            known = first_known(config, s)
        except ValueError as exc:  # the series is still forecast; its answer says why it has no history
            out.failures.append(failure(rid, "config", f"no historical predictions: {exc}", series=name))
            known = 0
        try:
            units = plan_all(config, len(s), name, known, regressors.names(name))
        except ValueError as exc:
            out.failures.append(failure(rid, "data", str(exc), series=name))
            continue
        if units:
            planned[name] = (units, known)
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
