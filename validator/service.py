"""Validator service: consume `predictions` → collect each series' units in a changelog-backed table →
once all are scored, send each model's best unit back to `datasets` for its final refit → once those are
in (or the deadline passed) choose the best model → produce `best-models`, `failures`, `progress`.

Every rule is in the book (validator.book), which plans; this module decodes, asks it, and carries out the
effects it returns in their order."""

from __future__ import annotations

import logging

import faust

from schemas.topics import BEST_MODELS, DATASETS, FAILURES, PREDICTIONS, PROGRESS, SERIES
from timex_stream.runtime.faust_app import create_app, decoded, raw_topic, run_worker, send_record
from timex_stream.runtime.logs import request_id_var
from timex_stream.runtime.records import now_ms
from timex_stream.runtime.series_store import SeriesStore
from timex_stream.runtime.settings import Settings
from validator import multivariate
from validator.book import Book, Delete, Effect, Landed, Publish, Send, StoreReader, Track, Write

log = logging.getLogger("validator")


def build_app(settings: Settings) -> faust.App:
    app = create_app("validator", settings)
    metrics = app.timex_metrics  # type: ignore[attr-defined]
    # Sent to: best-models, failures, progress; datasets (final refits, repairs); predictions (its own markers);
    # series (a regressor's history + forecast, for the series it is a regressor of).
    channels = {t.name: raw_topic(app, t) for t in (PREDICTIONS, BEST_MODELS, SERIES, DATASETS, FAILURES, PROGRESS)}
    # One table keyed like the predictions (timex_stream.runtime.decide: states and parts). Every write happens while
    # processing a prediction, so the changelog partition is that prediction's: state and input stay
    # co-partitioned across restarts and rebalances. No value_type: values are JSON (a SeriesState carries
    # its Faust type tag); one table, not two: a second changelog topic is created by Faust at start, and a
    # worker that starts before it exists stalls its agent.
    table = app.Table("series-states", key_type=str, partitions=PREDICTIONS.partitions)
    store = SeriesStore(settings.bootstrap_servers or "")  # each series' config and xcorr, read once per series
    book = Book(table, StoreReader(store), settings.validator_deadline_s, settings.validator_stall_s,
                settings.validator_forget_s)

    async def carry_out(effects: list[Effect]) -> None:
        todo = list(effects)
        while todo:
            effect = todo.pop(0)
            if isinstance(effect, Send):
                await send_record(channels[effect.topic.name], effect.key, effect.record)
                _count(effect)
            elif isinstance(effect, Write):
                table[effect.key] = effect.value
            elif isinstance(effect, Delete):
                del table[effect.key]
            elif isinstance(effect, Track):
                book.track(effect)
            elif isinstance(effect, Publish):
                try:
                    sent = [await send_record(channels[effect.topic.name], k, r) for k, r in effect.records]
                    landed: Landed = [(m.partition, m.offset) for m in [await s for s in sent]]  # type: ignore
                except Exception as exc:  # what waits for these records is told why they did not land
                    landed = exc
                todo[:0] = effect.then(landed)  # carried out next

    def _count(effect: Send) -> None:
        if effect.topic == FAILURES:
            metrics.failures.labels(effect.record["stage"]).inc()
        elif effect.topic == BEST_MODELS:
            metrics.produced.labels(BEST_MODELS.name).inc()
            r = effect.record
            log.info("%s decided: %s (%d/%d units)", r["series"], r["model"], r["units_done"], r["units_total"])

    @table.on_recover
    async def index_recovered_states() -> None:
        book.recover()

    @app.agent(channels[PREDICTIONS.name])
    async def collect(stream: faust.StreamT) -> None:
        async for _event, prediction in decoded(app, stream, PREDICTIONS):
            request_id_var.set(prediction["request_id"])
            await carry_out(await book.receive(prediction))

    @app.timer(interval=5.0)
    async def watch_stalled_series() -> None:
        await carry_out(book.tick(now_ms()))  # stall repair, deadline and forget markers

    @app.timer(interval=multivariate.READY_RETRY_S)
    async def retry_ready_markers() -> None:
        await carry_out(book.retry_due(now_ms()))  # a ready marker that came before its series

    @app.on_before_shutdown.connect
    def close_store(*_: object, **__: object) -> None:
        store.close()

    return app


def main(s: Settings) -> int:
    return run_worker(build_app(s), "validator", s)
