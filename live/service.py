"""Live service: follow `standing` (a table of the active standing requests) and `best-models` (the choice of
each live series, kept in the same table) → one `Follower` per active request (live/follower.py), which reads
the request's source topic, fans a ready series out to the normal selection, and publishes its revisions on
`forecasts` (compacted: the latest per series) and `forecast-history` (every revision), straight through the
app's producer (live/revisions.py).

Several instances of the service share the standing requests: each follows those on its partitions of
`standing` (live/shards.py), so the revising of several requests spreads over processes (a request's series stay
in one process: its source topic is read once).

The table holds, under the request id, the standing record (config, owner, history) of each active request,
and under `request_id/series` the choice for that series, so a restart re-reads each source topic from
`start_from`, takes the same snapshots and fits the known choices again instead of asking for a new selection.
Fits and refits run in the unit pool (timex_stream.runtime.pool: each under TIMEX_UNIT_MEMORY_MB and
TIMEX_UNIT_TIMEOUT_S), never on the event loop. The bounds: TIMEX_LIVE_MAX_REQUESTS active standing requests in
all and TIMEX_LIVE_MAX_REQUESTS_PER_USER per owner (checked here, the authority: the ingestion cannot know what
is active), TIMEX_LIVE_MAX_SERIES and TIMEX_LIVE_MAX_RECORDS_PER_S per request (live/follower.py).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import faust
from confluent_kafka import Message

from forecasting.live.follow import Choice
from forecasting.live.reselect import answer_of
from live.accuracy import AccuracyMetrics
from live.admission import admit
from live.follower import Follower
from live.published import Published, published
from live.revisions import KeyHashPartitioner, RevisionSender
from live.shards import owns, reselection_key
from schemas import Topic
from schemas.keys import reselection_of
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
from timex_stream.runtime.kafka import dead_letter_headers
from timex_stream.runtime.logs import request_id_var
from timex_stream.runtime.pool import Limits, UnitPool, forkserver_context, start_model_worker
from timex_stream.runtime.records import ACTIVE, STOPPED, failure
from timex_stream.runtime.settings import Settings

log = logging.getLogger("live")


class LiveSender:
    """The fan-out's `Sender` over the app's topics. It skips the request index: the ingestion wrote the
    standing request's entry, and the live service does not produce `requests`. The revisions and their
    accuracy go straight to the app's producer (live/revisions.py)."""

    def __init__(self, app: faust.App, topics: Sequence[Topic], partitioner: KeyHashPartitioner) -> None:
        self.channels = {t.name: raw_topic(app, t) for t in topics}  # opened: the wiring's check of each topic
        self.revisions = RevisionSender(app, partitioner)

    async def send(self, topic: Topic, key: str, record: dict[str, Any]) -> Any:
        if topic.name not in self.channels:
            return None
        if topic.name in REVISION_TOPICS:
            await self.revisions.send((topic,), key, record)
            return None
        return await send_record(self.channels[topic.name], key, record)

    async def send_each(self, topics: Sequence[Topic], key: str, record: dict[str, Any]) -> None:
        """One record to topics of the same value schema, encoded once (a revision: forecasts and
        forecast-history)."""
        assert all(t.name in REVISION_TOPICS and t.name in self.channels for t in topics), "revisions only"
        await self.revisions.send(topics, key, record)

    async def ship(self) -> None:
        """The revisions sent so far handed to the producer (the end of a revise pass)."""
        await self.revisions.ship()

    async def flush(self) -> None:
        """Wait until what was sent so far is written (a stopped request's last revisions)."""
        await self.revisions.flush()

    async def landed(self, handles: Sequence[Any]) -> list[Landed]:
        return [(md.partition, md.offset) for md in await asyncio.gather(*handles)]


# A partition's batch of revisions (live/revisions.py): one revise pass's records for a partition fit in one (a
# full one is shipped at once, and waits for the one before it to be on its way); the brokers take up to 1 MB.
REVISION_BATCH_BYTES = 512 * 1024

REVISION_TOPICS = {FORECASTS.name, FORECAST_HISTORY.name, ACCURACY.name}


# What the pool's fork server imports once: its workers start with the live models loaded.
PRELOAD = ["timex_stream.runtime.orphan_guard", "timex_stream.runtime.pool", "forecasting.live.follow"]
POOL_SIZE = 1  # fits and refits are rare next to the per-point updates, which stay on the loop


def _pool(settings: Settings) -> UnitPool:
    """Workers start on the first fit (a stack with no live request runs none)."""
    limits = Limits(memory_mb=settings.unit_memory_mb, timeout_s=settings.unit_timeout_s, nice=settings.unit_nice)
    return UnitPool(POOL_SIZE, limits, forkserver_context(PRELOAD), start_model_worker)


def build_app(settings: Settings) -> faust.App:
    partitioner = KeyHashPartitioner()  # the app's sends and the revisions' batches: the same partitions
    app = create_app("live", settings, producer_partitioner=partitioner, producer_max_batch_size=REVISION_BATCH_BYTES)
    metrics = app.timex_metrics  # type: ignore[attr-defined]
    accuracy_metrics = AccuracyMetrics(metrics.registry)
    consumer_config = {"bootstrap.servers": settings.bootstrap_servers or "", **settings.kafka_client_config()}
    sender = LiveSender(app, (SERIES, DATASETS, FAILURES, PROGRESS, FORECASTS, FORECAST_HISTORY, ACCURACY),
                        partitioner)
    dead_letters = raw_topic(app, DEAD_LETTERS)
    # JSON values: under request_id the active standing record, under request_id/series the series' choice, and
    # under reselection_key(request_id, at)/series the answer of that re-selection (a restart decides the same).
    table = app.Table("standing-requests", key_type=str, partitions=STANDING.partitions)
    followers: dict[str, Follower] = {}
    pool = _pool(settings)
    earlier: list[asyncio.Future[Published]] = []  # what earlier runs wrote: read once, before any follower writes

    async def dead_letter(msg: Message, reason: str) -> None:
        headers = dead_letter_headers(msg.topic(), msg.partition(), msg.offset(), reason)
        await dead_letters.send(key=msg.topic().encode(), value=msg.value() or b"", headers=headers)
        metrics.dead_letters.labels(msg.topic()).inc()

    def known_choice(rid: str):  # noqa: ANN202 - a closure per request
        def lookup(series: str) -> Choice | None:
            raw = table.get(series_key(rid, series))
            return Choice(**raw) if raw else None
        return lookup

    def known_answer(rid: str):  # noqa: ANN202 - a closure per request
        def lookup(series: str, at: int) -> dict[str, Any] | None:
            return table.get(series_key(reselection_key(rid, at), series))
        return lookup

    def active() -> set[int]:
        """The partitions of `standing` this instance follows the requests of (live/shards.py)."""
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == STANDING.name}

    def follow(rid: str, record: dict[str, Any], fresh: bool = False) -> None:
        """Follow `rid`; `fresh`: what was written is read again (a request another instance followed until now)."""
        if rid in followers:
            return
        if not earlier or fresh:
            earlier[:] = [asyncio.get_running_loop().run_in_executor(None, published, consumer_config[
                "bootstrap.servers"])]
        standing = {**record, "history_csv": base64.b64decode(record["history_csv"]) if record.get("history_csv")
                    else None}
        follower = Follower(rid, standing, settings, sender, dead_letter, pool, known_choice(rid), consumer_config,
                            earlier[0], known_answer=known_answer(rid), metrics=accuracy_metrics)
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
                refused = admit(record.get("owner"), [table[key] for key in table if "/" not in key], settings)
                if refused:
                    await sender.send(FAILURES, rid, failure(rid, "limits", refused, fatal=True))
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
                if parent not in table:
                    continue  # stopped meanwhile
                answer = answer_of(best)
                table[series_key(rid, best["series"])] = answer  # kept first: a restart finds it
                follower = followers.get(parent)
                if follower is not None:
                    follower.reselected(best["series"], at, answer)
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
        # After a (re)start the table, rebuilt from its changelog, names the active requests: follow those on this
        # instance's partitions (its table holds other instances' ones too, as standby copies). A rebalance (another
        # instance came or went) moves some: stop those that went elsewhere, quietly, and follow those that came,
        # reading what the other instance wrote first. Not while the group rebalances: the assignment is in flux.
        if app.rebalancing:
            return
        mine = active()
        for rid in [rid for rid in followers if not owns(rid, mine)]:
            await followers.pop(rid).stop(None)
        taken_over = bool(earlier)  # followed by another instance until now, or a new start's first reading
        for key in list(table):
            if "/" not in key and key not in followers and owns(key, mine):
                follow(key, table[key], fresh=taken_over)
                taken_over = False  # one reading for the requests taken over together

    @app.on_before_shutdown.connect
    def stop_pool(*_: object, **__: object) -> None:
        pool.close()

    return app


def main(s: Settings) -> int:
    return run_worker(build_app(s), "live", s)
