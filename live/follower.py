"""One active standing request, followed: its source topic read from `start_from` by a confluent-kafka consumer
of its own (manual assignment, no group, no commits), polled in a thread of its own so the event loop never
waits on the broker, in batches of at most `BATCH_RECORDS`. Each record is decoded
(forecasting.live.observations), folded into its series (forecasting.live.follow.LiveSeries), and after each
batch every series with a model publishes one revision (several points may fold into it).

What a record gives, and what is sent:
- a bad record: the dead letters (with topic, partition, offset in its headers) and a count on progress;
- a too-late observation: a count on progress and a `failures` record naming topic/partition/offset;
- a series reaching `min_points`: the fan-out of its snapshot (the ingestion's sequence, under the standing
  request's id), unless its choice is already known (a restart: the service's table keeps it);
- a choice (best-models): a fit in the unit pool; the next batch publishes revision = `included`, with its
  realised accuracy (also on `accuracy`);
- a drift or schedule (forecasting.live.reselect): the series' latest window fanned out again under
  `reselection_key` (or its outcome, when the service's table knows it); its answer (`reselected`) keeps the
  model or fits the new one in the unit pool (`_switch`). Meanwhile that series publishes nothing; the others go on;
- a refit kind's due fit (every REFIT_EVERY points, forecasting.live.models.refit): a refit in the unit pool,
  never on this loop; the series' revision waits for it (its points fold into that revision), the other
  series go on. Where a refit takes effect is defined by the points, not by when the pool answered, so a
  replay gives the same revisions;
- a fit or refit over a limit of the pool (TIMEX_UNIT_MEMORY_MB, TIMEX_UNIT_TIMEOUT_S, or a crash twice): a
  `limits` failure for that series, which is revised no more; the other series go on.

At most TIMEX_LIVE_MAX_RECORDS_PER_S records a second are taken (live/pace.py): over it, the rest wait on the
topic (back-pressure; nothing is lost).

Restart: the follower re-reads the topic from `start_from` and recomputes; revisions are derived from the
inputs only, so one written twice carries the same number and the same content, and those up to the last one
an earlier run wrote (live/published.py) are not written again, nor are records it reported reported again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol

import pandas as pd
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, Message, TopicPartition

from forecasting.config import config_from_json
from forecasting.data import DataError, load_series
from forecasting.live.follow import Choice, LiveSeries, RefitWork, fit_live, refit_live
from forecasting.live.observations import BadObservation, ObservationReader
from forecasting.live.params import live_request
from forecasting.live.reselect import Decision, Trigger
from forecasting.live.window import Added
from live.accuracy import AccuracyMetrics
from live.pace import Pace
from live.published import Published
from live.shards import reselection_key
from schemas import Topic
from schemas.topics import ACCURACY, FAILURES, FORECAST_HISTORY, FORECASTS, PROGRESS, series_key
from timex_stream.runtime.fan_out import Outcome, Sender, fan_out, publish
from timex_stream.runtime.pool import UnitLimitError, UnitPool
from timex_stream.runtime.records import accuracy_record, failure, forecast_revision, progress
from timex_stream.runtime.settings import Settings

log = logging.getLogger("live")

BATCH_RECORDS = 5_000  # records taken per poll: one revision per series per batch at most (folding under load)
POLL_S = 0.5
# The source topic's fetches: the broker answers when 64 KiB have come or 25 ms have passed, not at every record
# (librdkafka's default, fetch.min.bytes 1): a busy stream costs the broker a fetch per 25 ms, not one per few
# records (bench/live.py: its CPU per observation halved with the revisions' linger), for at most 25 ms of delay.
FETCH = {"fetch.wait.max.ms": 25, "fetch.min.bytes": 64 * 1024}

Send = Callable[[Topic, str, dict[str, Any]], Awaitable[Any]]


class LiveSender(Sender, Protocol):
    async def send_each(self, topics: Sequence[Topic], key: str, record: dict[str, Any]) -> None:
        """One record to topics of one value schema, encoded once (a revision's two topics)."""

    async def ship(self) -> None:
        """Hand the revisions sent so far to the producer (a revise pass's end: they are batched until then)."""

    async def flush(self) -> None:
        """Wait until the revisions sent so far are written."""
DeadLetter = Callable[[Message, str], Awaitable[None]]
KnownAnswer = Callable[[str, int], dict[str, Any] | None]  # (series, triggered_at) → a kept re-selection answer


class Follower:
    def __init__(self, request_id: str, standing: dict[str, Any], settings: Settings, sender: LiveSender,
                 dead_letter: DeadLetter, pool: UnitPool, known_choice: Callable[[str], Choice | None],
                 consumer_config: dict[str, Any], published: Awaitable[Published] | None = None,
                 known_answer: KnownAnswer | None = None, metrics: AccuracyMetrics | None = None) -> None:
        self.rid, self.settings, self.sender, self.dead_letter = request_id, settings, sender, dead_letter
        self.pool, self.known_choice = pool, known_choice
        self.config_json = standing["config_json"]
        self.history_csv: bytes | None = standing.get("history_csv")
        self.config = config_from_json(self.config_json)
        live = live_request(self.config)
        assert live is not None, "a standing request's config has a source topic"
        self.live = live
        self.frequency = self.config.input_parameters.frequency or ""
        self.reader = ObservationReader(self.config, live.live.record_format)
        self.series: dict[str, LiveSeries] = {}
        self.refused: set[str] = set()  # series past TIMEX_LIVE_MAX_SERIES (told once each)
        self.bad = self.too_late = 0
        self.told: dict[str, int] = {}  # what progress said last, per series (only changes are sent)
        self.fitting: set[str] = set()
        self.refitting: set[str] = set()
        self.refits: set[asyncio.Future[None]] = set()
        self.stopped: set[str] = set()  # series whose fit or refit a limit stopped: revised no more
        self.pace = Pace(settings.live_max_records_per_s)
        self.consumer_config = consumer_config
        self.published = published  # live/published.py: what earlier runs wrote (read once per service start)
        self.earlier = Published()
        self.last: dict[str, int] = {}  # series → the last revision written (by this run or an earlier one)
        self.known_answer, self.metrics = known_answer or (lambda _series, _at: None), metrics
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"live-{request_id}")
        self.stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    async def stop(self, why: str | None) -> None:
        """End following (the task sends the final progress event, unless `why` is None: another instance of the
        service follows the request from now on, live/shards.py)."""
        self.stop_reason = why
        self.stopping.set()
        if self.task is not None:
            await asyncio.wait([self.task], timeout=30)

    async def _send(self, topic: Topic, key: str, record: dict[str, Any]) -> None:
        await self.sender.send(topic, key, record)

    async def _progress(self, message: str, series: str | None = None, stage: str = "live") -> None:
        await self._send(PROGRESS, self.rid, progress(self.rid, stage, message, series=series))

    async def _run(self) -> None:
        consumer: Consumer | None = None
        loop = asyncio.get_running_loop()
        try:
            await self._recall()
            await self._seed()
            opened = await loop.run_in_executor(self.thread, self._open)
            if isinstance(opened, str):
                await self._send(FAILURES, self.rid, failure(
                    self.rid, "source_topic", f"input_parameters.source_topic {self.live.source_topic!r}: {opened}",
                    fatal=True))
                return
            consumer = opened
            while not self.stopping.is_set():
                take = self.pace.allowance(BATCH_RECORDS)
                if take < 1:  # over the rate: the records wait on the topic
                    await asyncio.sleep(min(POLL_S, self.pace.wait_s()))
                    await self._revise()  # a refit that came back meanwhile
                    continue
                batch = await loop.run_in_executor(self.thread, self._poll, consumer, take)
                self.pace.took(len(batch))
                await self._fold(batch)
                await self._revise()
                await self._tell()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one request's trouble never stops the others
            log.exception("live request %s failed", self.rid)
            await self._send(FAILURES, self.rid, failure(self.rid, "internal", f"live request failed: {exc}",
                                                         fatal=True))
        finally:
            if consumer is not None:
                await loop.run_in_executor(self.thread, consumer.close)
            self.thread.shutdown(wait=False)
            if self.stopping.is_set():
                await self.sender.flush()  # its last revisions written before it says it stopped
            if self.stopping.is_set() and getattr(self, "stop_reason", "stop") is not None:
                await self._progress(f"standing request stopped ({getattr(self, 'stop_reason', 'stop')}); the last "
                                     "revision of each series stays on the forecasts topic", stage="stopped")

    async def _recall(self) -> None:
        """What earlier runs wrote: a restart recomputes it, but writes it (and reports a record) only once."""
        if self.published is not None:
            self.earlier = await self.published
            self.last = self.earlier.revisions_of(series_key(self.rid, ""))

    async def _seed(self) -> None:
        """The history CSV (source_data_url), before any record of the topic."""
        if not self.history_csv:
            return
        try:
            loaded = load_series(self.config, self.history_csv).series
        except DataError as exc:
            await self._send(FAILURES, self.rid, failure(self.rid, "data", f"the history CSV: {exc}"))
            return
        for name, history in loaded.items():
            series = self._series(name)
            if series is not None and series.seed(history):
                await self._ready(series)

    def _open(self) -> Consumer | str:
        """The consumer, assigned every partition of the source topic at `start_from` (in the thread), or why
        there is none."""
        topic, start = self.live.source_topic, self.live.live.start_from
        consumer = Consumer({**self.consumer_config, "group.id": f"timex-live-{self.rid}",
                             "enable.auto.commit": False, "enable.partition.eof": False, **FETCH})
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            consumer.close()
            return "no such topic on the cluster (any more), or it may not be read"
        partitions = sorted(meta.partitions)
        if start == "earliest":
            assigned = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        elif start == "latest":
            assigned = [TopicPartition(topic, p, OFFSET_END) for p in partitions]
        else:
            at_ms = int(pd.Timestamp(start).tz_localize("UTC").timestamp() * 1000)
            found = consumer.offsets_for_times([TopicPartition(topic, p, at_ms) for p in partitions], timeout=10)
            assigned = [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                        for tp in found]
        consumer.assign(assigned)
        return consumer

    @staticmethod
    def _poll(consumer: Consumer, most: int) -> list[Message]:
        """The records there are, as soon as there is one (waiting at most POLL_S for it), at most `most`: a
        batch never waits to fill (`consume(n, t)` waits for n records or t seconds, half a second of delay at
        low rates); under load the records that came during a batch's work fold into the next one."""
        first = consumer.consume(1, POLL_S)
        return first + consumer.consume(most - 1, 0) if first and most > 1 else first

    def _series(self, name: str) -> LiveSeries | None:
        series = self.series.get(name)
        if series is None and name not in self.refused:
            if len(self.series) >= self.settings.live_max_series:
                self.refused.add(name)
                return None
            series = self.series[name] = LiveSeries(name, self.config, self.live.live, self.frequency)
        return series

    async def _fold(self, batch: list[Message]) -> None:
        for msg in batch:
            if msg.error() is not None:
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("%s: %s", self.live.source_topic, msg.error())
                continue
            where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
            try:
                observations = self.reader.read(msg.key(), msg.value())
            except BadObservation as exc:
                self.bad += 1
                if where not in self.earlier.dead:
                    await self.dead_letter(msg, f"{exc.where}: {exc.reason}")
                continue
            for obs in observations:
                series = self._series(obs.series)
                if series is None:
                    if len(self.refused) == 1 and obs.series in self.refused and obs.series not in self.told:
                        self.told[obs.series] = -1
                        await self._send(FAILURES, self.rid, failure(
                            self.rid, "limits", f"series {obs.series!r} and any further ones are not followed: at "
                            f"most {self.settings.live_max_series:,} live series per request "
                            "(TIMEX_LIVE_MAX_SERIES)", series=obs.series))
                    continue
                added, ready = series.add(obs)
                if added is Added.TOO_LATE:
                    self.too_late += 1
                    if (self.rid, where) in self.earlier.late:
                        continue
                    await self._send(FAILURES, self.rid, failure(
                        self.rid, "late", f"the observation at {obs.timestamp.isoformat()} ({where}) is older than "
                        "allowed_lateness: left out", series=obs.series, detail=where))
                elif ready:
                    await self._ready(series)

    async def _ready(self, series: LiveSeries) -> None:
        """A series reached min_points: its choice if known (a restart), else the normal TIMEX selection."""
        choice = self.known_choice(series.name)
        if choice is not None:
            self.chosen(series.name, choice)
            return
        assert series.snapshot is not None
        out = Outcome(self.rid)
        out.progress.append(progress(self.rid, "live", f"series {series.name}: {len(series.snapshot)} points, "
                                     "selecting a model", series=series.name))
        fan_out(out, self.config, {series.name: series.snapshot}, None, limits=self.settings.limits)
        await publish(self.sender, {}, out)  # the sender skips the index: the ingestion wrote it

    def chosen(self, name: str, choice: Choice) -> None:
        """The selection's answer for a series: fit it in the pool (the next batch publishes its revision)."""
        series = self.series.get(name)
        if (series is None or series.snapshot is None or series.model is not None or name in self.fitting
                or name in self.stopped):
            return
        self.fitting.add(name)
        asyncio.ensure_future(self._fit(series, choice))

    async def _fit(self, series: LiveSeries, choice: Choice) -> None:
        assert series.snapshot is not None
        try:
            fitted = await self.pool.run(f"{self.rid}/{series.name}/fit", partial(fit_live, self.config_json,
                                                                                  series.snapshot), choice)
        except UnitLimitError as exc:
            await self._stopped_by_limit(series.name, f"the live model {choice.model} could not be fitted", exc,
                                         choice.model)
            return
        except Exception as exc:
            await self._send(FAILURES, self.rid, failure(
                self.rid, "model", f"the live model {choice.model} could not be fitted: {exc}", series=series.name,
                model=choice.model))
            return
        finally:
            self.fitting.discard(series.name)
        series.start(choice, fitted)

    async def _refit(self, series: LiveSeries, work: RefitWork) -> None:
        """A refit kind's due fit, in the pool; once installed, the next `_revise` publishes its revision."""
        assert series.choice is not None
        try:
            ahead = await self.pool.run(f"{self.rid}/{series.name}/refit", refit_live, work)
        except UnitLimitError as exc:
            await self._stopped_by_limit(series.name, f"the live model {series.choice.model} could not be refitted",
                                         exc, series.choice.model)
            return
        except Exception as exc:
            self.stopped.add(series.name)
            await self._send(FAILURES, self.rid, failure(
                self.rid, "model", f"the live model {series.choice.model} could not be refitted: {exc}; this "
                "series is revised no more", series=series.name, model=series.choice.model))
            return
        finally:
            self.refitting.discard(series.name)
        series.refitted(ahead)  # False when more points made another fit due: the next _revise asks for it

    async def _stopped_by_limit(self, name: str, what: str, exc: UnitLimitError, model: str) -> None:
        self.stopped.add(name)
        await self._send(FAILURES, self.rid, failure(
            self.rid, "limits", f"{what}: {exc}; this series is revised no more, the others go on", series=name,
            model=model))

    async def _revise(self) -> None:
        for series in self.series.values():
            if series.idle() or series.name in self.stopped or series.name in self.refitting:
                continue
            try:
                series.fold()
                work = series.refit_work()
                fields = series.revise() if work is None else None
            except Exception as exc:  # e.g. a value outside the transformation's domain
                await self._send(FAILURES, self.rid, failure(self.rid, "model", f"no revision: {exc}",
                                                             series=series.name))
                continue
            if (trigger := series.take_trigger()) is not None:
                await self._reselect(series, trigger)
            if work is not None:  # the pool's work: this series' revision waits for it
                self.refitting.add(series.name)
                task = asyncio.ensure_future(self._refit(series, work))
                self.refits.add(task)  # held: the loop keeps only a weak reference to a task
                task.add_done_callback(self.refits.discard)
                continue
            if fields is None or fields["revision"] <= self.last.get(series.name, 0):
                continue  # nothing new, or a restart recomputing a revision already written (the same content)
            fields["points"] = fields["revision"] - self.last.get(series.name, 0)  # since the last one written
            self.last[series.name] = fields["revision"]
            record = forecast_revision(self.rid, **fields)
            key = series_key(self.rid, series.name)
            await self.sender.send_each((FORECASTS, FORECAST_HISTORY), key, record)
            if (scores := accuracy_record(record)) is not None:
                await self._send(ACCURACY, key, scores)
            if self.metrics is not None:
                self.metrics.observe(self.rid, record)
        await self.sender.ship()

    async def _reselect(self, series: LiveSeries, trigger: Trigger) -> None:
        """Run the selection again on the trigger's window (or take its known outcome: a restart)."""
        known = self.known_answer(series.name, trigger.triggered_at)
        if known is not None and series.choice is not None:  # a restart: the answer is in the service's table
            self._spawn(self._resolve(series, trigger, series.decision(trigger, known)))
            return
        sub = reselection_key(self.rid, trigger.triggered_at)
        out = fan_out(Outcome(sub), self.config, {series.name: trigger.snapshot}, None, limits=self.settings.limits)
        if refused := [f for f in out.failures if f["fatal"]]:
            await self._resolve(series, trigger, Decision(False, why=f"the re-selection was refused: "
                                                          f"{refused[0]['message']}"), outcome="failed")
            return
        await self._progress(f"series {series.name}: re-selecting a model ({trigger.reason}, at observation "
                             f"{trigger.triggered_at}, rolling error {trigger.rolling_error}) as {sub}",
                             series=series.name)
        await publish(self.sender, {}, out)

    def reselected(self, name: str, triggered_at: int, answer: dict[str, Any]) -> None:
        """The answer of a re-selection (best-models under `reselection_key`, `answer_of`), for the series waiting
        for it; a series not there yet (a restart catching up) finds it in the service's table when it is."""
        series = self.series.get(name)
        trigger = series.reselection if series is not None else None
        if series is None or trigger is None or trigger.triggered_at != triggered_at or series.choice is None:
            return
        self._spawn(self._resolve(series, trigger, series.decision(trigger, answer)))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Off the revise loop (a fit in the pool may follow): the other series go on meanwhile."""
        task = asyncio.ensure_future(work)
        self.refits.add(task)  # held: the loop keeps only a weak reference to a task
        task.add_done_callback(self.refits.discard)

    async def _resolve(self, series: LiveSeries, trigger: Trigger, decision: Decision,
                       outcome: str | None = None) -> None:
        await self._progress(f"series {series.name}: {decision.why} (old error {decision.old_error}, new error "
                             f"{decision.new_error})", series=series.name)
        fit = series.resolve(decision)
        if self.metrics is not None:
            self.metrics.reselected(trigger.reason, outcome or ("switched" if fit else "kept"))
        if fit:
            assert decision.model is not None and decision.transformation is not None and decision.window is not None
            choice = Choice(decision.model, decision.transformation, decision.window, dict(decision.params or {}),
                            decision.new_error)
            await self._switch(series, trigger, choice, decision)

    async def _switch(self, series: LiveSeries, trigger: Trigger, choice: Choice, decision: Decision) -> None:
        """The new choice fitted on the trigger's window in the unit pool (its limits), then installed."""
        try:
            fitted = await self.pool.run(f"{self.rid}/{series.name}/reselect",
                                         partial(fit_live, self.config_json, trigger.snapshot), choice)
        except Exception as exc:  # a limit of the pool too: the old model stays, revisions go on
            await self._send(FAILURES, self.rid, failure(
                self.rid, "model", f"the re-selected model {choice.model} could not be fitted: {exc}; the model "
                "stays", series=series.name, model=choice.model))
            series.resolve(Decision(False, why="the new model could not be fitted"))
            return
        series.switch(choice, fitted, decision)

    async def _tell(self) -> None:
        """Progress, only for what changed: the points a waiting series has, the bad and late counts."""
        for name, series in self.series.items():
            if series.snapshot is None and self.told.get(name) != series.final_points:
                self.told[name] = series.final_points
                await self._progress(f"series {name}: {series.final_points} of {series.min_points} points",
                                     series=name)
        counts = (self.bad, self.too_late)
        if counts != (self.told.get("\0bad", 0), self.told.get("\0late", 0)):
            self.told["\0bad"], self.told["\0late"] = counts
            await self._progress(f"{self.bad} bad record(s) sent to the dead letters, {self.too_late} "
                                 "observation(s) too late (left out)")
