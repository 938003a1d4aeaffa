"""Live service: follow `standing` (a table of the active standing requests) and `best-models` (the choice of
each live series, kept in the same table) → one `Follower` per active request (live/follower.py), which reads
the request's source topic, fans a ready series out to the normal selection, and publishes its revisions on
`forecasts` (compacted: the latest per series) and `forecast-history` (every revision).

The table holds, under the request id, the standing record (config, owner, history) of each active request,
and under `request_id/series` the choice for that series, so a restart re-reads each source topic from
`start_from`, takes the same snapshots and fits the known choices again instead of asking for a new selection.
Fits run in a process pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import Any

import faust
from confluent_kafka import Message

from forecasting.live.follow import Choice
from forecasting.workers import init_worker
from live.accuracy import AccuracyMetrics
from live.follower import Follower
from schemas import Topic
from schemas.keys import reselection_id, reselection_of
from schemas.topics import (
    ACCURACY,
    BEST_MODELS,
    DATASETS,
    DEAD_LETTERS,
    FAILURES,
    FORECAST_HISTORY,
    FORECASTS,
    PROGRESS,
    SERIES,
    STANDING,
    series_key,
)
from timex_stream.runtime.fan_out import Landed
from timex_stream.runtime.faust_app import create_app, decoded, raw_topic, run_worker, send_record
from timex_stream.runtime.logs import request_id_var
from timex_stream.runtime.records import ACTIVE, STOPPED, failure
from timex_stream.runtime.settings import Settings

log = logging.getLogger("live")


class LiveSender:
    """The fan-out's `Sender` over the app's topics. It skips the request index: the ingestion wrote the
    standing request's entry, and the live service does not produce `requests`."""

    def __init__(self, app: faust.App, topics: Sequence[Topic]) -> None:
        self.channels = {t.name: raw_topic(app, t) for t in topics}

    async def send(self, topic: Topic, key: str, record: dict[str, Any]) -> Any:
        if topic.name not in self.channels:
            return None
        return await send_record(self.channels[topic.name], key, record)

    async def landed(self, handles: Sequence[Any]) -> list[Landed]:
        return [(md.partition, md.offset) for md in await asyncio.gather(*handles)]


def _pool() -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context("forkserver")  # workers fork from a clean server, not the event loop
    ctx.set_forkserver_preload(["forecasting.live.follow"])
    return ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=init_worker)


def build_app(settings: Settings) -> faust.App:
    app = create_app("live", settings)
    metrics = app.timex_metrics  # type: ignore[attr-defined]
    accuracy_metrics = AccuracyMetrics(metrics.registry)
    sender = LiveSender(app, (SERIES, DATASETS, FAILURES, PROGRESS, FORECASTS, FORECAST_HISTORY, ACCURACY))
    dead_letters = raw_topic(app, DEAD_LETTERS)
    # JSON values: under request_id the active standing record, under request_id/series the series' choice, and
    # under reselection_id(request_id, at)/series the outcome of that re-selection (a restart decides the same).
    table = app.Table("standing-requests", key_type=str, partitions=STANDING.partitions)
    followers: dict[str, Follower] = {}
    pool: list[ProcessPoolExecutor] = []
    consumer_config = {"bootstrap.servers": settings.bootstrap_servers or "", **settings.kafka_client_config()}

    async def dead_letter(msg: Message, reason: str) -> None:
        headers = {"source.topic": msg.topic().encode(), "source.partition": str(msg.partition()).encode(),
                   "source.offset": str(msg.offset()).encode(), "error": reason.encode()[:2000]}
        await dead_letters.send(key=msg.topic().encode(), value=msg.value() or b"", headers=headers)
        metrics.dead_letters.labels(msg.topic()).inc()

    def known_choice(rid: str):  # noqa: ANN202 - a closure per request
        def lookup(series: str) -> Choice | None:
            raw = table.get(series_key(rid, series))
            return Choice(**raw) if raw else None
        return lookup

    def known_decision(rid: str):  # noqa: ANN202 - a closure per request
        def lookup(series: str, at: int) -> dict[str, Any] | None:
            return table.get(series_key(reselection_id(rid, at), series))
        return lookup

    def follow(rid: str, record: dict[str, Any]) -> None:
        if rid in followers:
            return
        if not pool:
            pool.append(_pool())
        standing = {**record, "history_csv": base64.b64decode(record["history_csv"]) if record.get("history_csv")
                    else None}
        follower = Follower(rid, standing, settings, sender, dead_letter, pool[0], known_choice(rid), consumer_config,
                            known_decision=known_decision(rid), metrics=accuracy_metrics)
        followers[rid] = follower
        follower.start()
        log.info("following %s", rid)

    @app.agent(raw_topic(app, STANDING))
    async def on_standing(stream: faust.StreamT) -> None:
        async for _event, record in decoded(app, stream, STANDING):
            rid = record["request_id"]
            request_id_var.set(rid)
            if record["status"] == ACTIVE:
                if rid in table:
                    continue  # a redelivery
                active = sum(1 for key in table if "/" not in key)
                if active >= settings.live_max_requests:
                    await sender.send(FAILURES, rid, failure(
                        rid, "limits", f"{active:,} standing requests are active; at most "
                        f"{settings.live_max_requests:,} (TIMEX_LIVE_MAX_REQUESTS): stop one first", fatal=True))
                    continue
                stored = {"request_id": rid, "config_json": record["config_json"], "owner": record["owner"],
                          "history_csv": base64.b64encode(record["history_csv"]).decode()
                          if record.get("history_csv") else None}
                table[rid] = stored
                follow(rid, stored)
            elif record["status"] == STOPPED:
                if rid in table:
                    del table[rid]
                follower = followers.pop(rid, None)
                if follower is not None:
                    await follower.stop("stopped by its owner")
                accuracy_metrics.forget(rid)

    @app.agent(raw_topic(app, BEST_MODELS))
    async def on_best_models(stream: faust.StreamT) -> None:
        async for _event, best in decoded(app, stream, BEST_MODELS):
            rid = best["request_id"]
            if (reselection := reselection_of(rid)) is not None:  # a live series' re-selection
                parent, at = reselection
                follower = followers.get(parent)
                decision = follower.reselected(best["series"], at, best) if follower is not None else None
                if decision is not None:
                    table[series_key(rid, best["series"])] = decision
                continue
            if rid not in table:
                continue  # an ordinary request's answer
            choice = Choice.of(best)
            if choice is None:
                continue  # every unit failed: the validator's answer says why
            table[series_key(rid, best["series"])] = asdict(choice)
            follower = followers.get(rid)
            if follower is not None:
                follower.chosen(best["series"], choice)

    @app.timer(interval=1.0)
    async def follow_recovered() -> None:
        # After a (re)start the table, rebuilt from its changelog, names the active requests: follow them.
        for key in list(table):
            if "/" not in key and key not in followers:
                follow(key, table[key])

    @app.on_before_shutdown.connect
    def stop_pool(*_: object, **__: object) -> None:
        for p in pool:
            p.shutdown(wait=False, cancel_futures=True)

    return app


def main(s: Settings) -> int:
    return run_worker(build_app(s), "live", s)
