"""Re-forecast from topic history.

`configs`: every config produced in a time range is submitted again as a new request (`replay_of` = the
original id), after optional `--set` edits; the ingestion downloads the data again (it may have grown).
`datasets`: every request's prepared series (read where its units point, on `series`, which keeps them as
long as `datasets`) are re-planned under the edited config and published as a new request by the
ingestion's own sequence (`timex_stream.runtime.fan_out`: index entry, series, then units), so nothing is downloaded
again (e.g. other models on the same data).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from forecasting.config import ConfigError, ParsedConfig, parse_config
from forecasting.regressors import AdditionalRegressors, recheck
from schemas import DecodeError, decode_as
from schemas.topics import CONFIGS, DATASETS
from timex_stream.runtime.fan_out import Outcome, ProducerSender, accepted, fan_out, publish
from timex_stream.runtime.history import read_range
from timex_stream.runtime.intake import Position, position_of, read_request
from timex_stream.runtime.records import now_ms
from timex_stream.runtime.request_index import index_record, read_index
from timex_stream.runtime.series_store import SeriesMissingError, SeriesStore, assemble
from timex_stream.runtime.settings import Settings
from timex_stream.runtime.submit import new_request_id, submit

Warn = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@dataclass
class Replayed:
    original_id: str
    new_id: str | None  # None on a dry run
    title: str | None
    at: int  # timestamp of the original record (ms)
    series: list[str] = field(default_factory=list)  # datasets only


def apply_sets(config: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """`model_parameters.models=arima,fbprophet` → config["model_parameters"]["models"] = "arima,fbprophet".
    Values stay strings, as TIMEX configs write them; the config is validated by whoever reads it."""
    out = json.loads(json.dumps(config))
    for assignment in assignments:
        path, sep, value = assignment.partition("=")
        keys = [k for k in path.strip().split(".") if k]
        if not sep or not keys:
            raise ValueError(f"--set {assignment!r}: expected dotted.path=value")
        node = out
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ValueError(f"--set {assignment!r}: '{key}' is not a section of the config")
            node = child
        node[keys[-1]] = value
    return out


def replay_configs(bootstrap: str, prod: Producer, start_ms: int, end_ms: int | None = None,
                   request_ids: list[str] | None = None, sets: list[str] | None = None, dry_run: bool = False,
                   warn: Warn = _stderr) -> list[Replayed]:
    done: list[Replayed] = []
    for msg in read_range(bootstrap, CONFIGS.name, start_ms, end_ms):
        key, value = msg.key(), msg.value()
        try:
            request = read_request(key, value, position_of(msg))
        except DecodeError as exc:
            warn(f"configs offset {msg.partition()}/{msg.offset()} skipped: {exc}")
            continue
        original = request["request_id"]  # a key-less config's too: derived from its offset, as the ingestion did
        if request_ids is not None and original not in request_ids:
            continue
        try:
            config = json.loads(request["config_json"])
            if not isinstance(config, dict):
                raise ValueError("not a JSON object")
            config = apply_sets(config, sets or [])
        except ValueError as exc:
            warn(f"request {original} skipped: {exc}")
            continue
        # The re-forecast belongs to whoever owned the original, so that gateway user sees it too.
        new_id = None if dry_run else submit(prod, config, csv=request.get("csv_data"), origin="replay",
                                             replay_of=original, owner=request.get("owner"))
        done.append(Replayed(original, new_id, config.get("activity_title"), msg.timestamp()[1]))
    return done


def _series_by_request(bootstrap: str, start_ms: int, end_ms: int | None, request_ids: list[str] | None,
                       warn: Warn) -> dict[str, tuple[int, dict[str, dict[str, Any]]]]:
    """original request id → (first record time, series → one Dataset record pointing at its data)."""
    found: dict[str, tuple[int, dict[str, dict[str, Any]]]] = {}
    for msg in read_range(bootstrap, DATASETS.name, start_ms, end_ms):
        try:
            record = decode_as("Dataset", msg.value() or b"")
        except DecodeError as exc:
            warn(f"datasets offset {msg.partition()}/{msg.offset()} skipped: {exc}")
            continue
        rid = record["request_id"]
        if request_ids is not None and rid not in request_ids:
            continue
        if record["ref"] is None:
            warn(f"datasets offset {msg.partition()}/{msg.offset()} skipped: written before units pointed at "
                 "their series, its data cannot be read")
            continue
        at, series = found.setdefault(rid, (msg.timestamp()[1], {}))
        series.setdefault(record["series"], record)  # every unit of a series carries the same data
    for rid, (_, series) in found.items():
        total = next(iter(series.values()))["series_total"]
        if len(series) < total:
            warn(f"request {rid}: only {len(series)} of its {total} series are in the time range")
    return found


def replay_datasets(bootstrap: str, prod: Producer, start_ms: int, end_ms: int | None = None,
                    request_ids: list[str] | None = None, sets: list[str] | None = None, dry_run: bool = False,
                    warn: Warn = _stderr) -> list[Replayed]:
    done: list[Replayed] = []
    found = _series_by_request(bootstrap, start_ms, end_ms, request_ids, warn)
    # The re-forecast belongs to whoever owned the original, as a configs replay's does.
    owners = {} if dry_run else {rid: entry["owner"] for rid, entry in read_index(bootstrap, set(found)).items()}
    store = SeriesStore(bootstrap)
    try:
        for original, (at, series) in sorted(found.items(), key=lambda item: item[1][0]):
            replayed = _replay_one(store, prod, original, owners.get(original), at, series, sets, dry_run, warn)
            if replayed is not None:
                done.append(replayed)
    finally:
        store.close()
    return done


def _replay_one(store: SeriesStore, prod: Producer, original: str, owner: str | None, at: int,
                series: dict[str, dict[str, Any]], sets: list[str] | None, dry_run: bool,
                warn: Warn) -> Replayed | None:
    try:
        config = apply_sets(json.loads(store.config_json(next(iter(series.values()))["ref"])), sets or [])
        parsed = parse_config(config)
        data = {} if dry_run else {name: store.series(r["ref"], name) for name, r in series.items()}
        regressors = None if dry_run else stored_regressors(store, parsed, data, series)
    except (ConfigError, ValueError, SeriesMissingError) as exc:
        warn(f"request {original} skipped: {exc}")
        return None
    title = parsed.config.activity_title
    if dry_run:
        return Replayed(original, None, title, at, sorted(series))
    new_id = new_request_id()
    _produce_request(prod, new_id, original, owner, json.dumps(config), parsed, data, regressors)
    return Replayed(original, new_id, title, at, sorted(series))


def stored_regressors(store: SeriesStore, parsed: ParsedConfig, data: dict[str, Any],
                       series: dict[str, dict[str, Any]]) -> AdditionalRegressors:
    """The additional regressors the original request stored, each read once, for the replayed series."""
    columns: dict[str, Any] = {}
    per_series: dict[str, list[str]] = {}
    for name, record in series.items():
        ref = record["ref"]
        per_series[name] = []
        for regressor in ref.get("regressors") or ():
            key = f"{ref['partition']}:{regressor['offsets']}"
            if key not in columns:
                columns[key] = assemble(store.records(ref["partition"], regressor["offsets"]), regressor["name"])
            per_series[name].append(key)
    return recheck(parsed.config, data, columns, per_series)


def _produce_request(prod: Producer, rid: str, original: str, owner: str | None, config_json: str,
                     parsed: ParsedConfig, data: dict[str, Any], regressors: AdditionalRegressors | None = None
                     ) -> None:
    """What the ingestion would publish for this request, from data already prepared (no download)."""
    began = now_ms()  # before any record of it: readers seek its answers from here
    out = fan_out(Outcome(rid, progress=[accepted(rid, parsed, original)]), parsed.config, data, original,
                  note=f" (replay of {original}'s data, not downloaded)", limits=Settings.from_env().limits,
                  regressors=regressors)
    # Its config is on no `configs` record (-1/-1): the index entry's time is when the replay began it.
    index = index_record(rid, Position(-1, -1, began), {
        "config_json": config_json, "submitted_at": began, "origin": "replay", "replay_of": original,
        "owner": owner, "csv_data": None})
    sender = ProducerSender(prod)
    asyncio.run(publish(sender, index, out))
    sender.flush()
