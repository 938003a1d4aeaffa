"""The claim check: a request's prepared series and config cross Kafka once, on the `series` topic, and
units point at them (`SeriesRef`: partition, offsets) instead of carrying them.

`parts` cuts a series into records (values float64, timestamps regenerated from start + frequency, or
int64 epoch microseconds when they cannot be), at most `chunk_points` points each, so a record stays well
under the broker's 1 MB default whatever the series' length (50,000 points: 400 kB of values, at most
800 kB with timestamps; no broker, topic or client size setting to keep in step). `SeriesStore` reads them
back by position, with a bounded LRU cache: a predictor that runs many units of one series, or a
validator deciding the series of one request, reads each record once.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import TopicPartition

from forecasting.series import from_epoch, regular_stamps, to_epoch
from schemas import decode_as
from schemas.keys import escape, series_key
from schemas.records import BestModelRecord, SeriesPartRecord, SeriesRefRecord
from schemas.topics import SERIES
from timex_stream.runtime.records import history_of, now_ms, series_part, series_ref  # noqa: F401 (series_ref: built in records, used with the store)

# Points per record: see the module docstring.
CHUNK_POINTS = 50_000
# A gap of more records than this between two wanted offsets is skipped by seeking, not read through.
SEEK_GAP = 200
# Indexes of at most this many points are kept for the next series with the same start, length and frequency.
INDEX_CACHE_POINTS = 100_000
# Records read past the last wanted one while they are already fetched: the next units of a request point
# at the next series (one seek per READ_AHEAD series of a request of many, instead of one per series).
READ_AHEAD = 256
# How long a read waits for the broker (e.g. restarting) before the unit is answered with an error; a record
# that is not there (the end of the partition is reached first) is an error at once.
READ_TIMEOUT_S = 300.0
# The cache's bound, in bytes of values, timestamps and config (a chunk is at most 800 kB).
CACHE_BYTES = 64 * 1024 * 1024
# librdkafka sends one fetch at a time per broker and the broker holds it up to fetch.wait.max.ms (500 by
# default) when the partition has nothing new: a read that seeks while such a fetch is out waited up to
# 500 ms for it (measured: ~0.5 s per unit of a trivial request, twice in the predictor). Short waits, and
# no partition left assigned between reads, so an idle store sends no fetches at all.
FETCH_WAIT_MS = 5
# librdkafka fetches the next records as soon as a fetch returns, so every read also sent an empty fetch (and
# waited FETCH_WAIT_MS on the broker) after the records it wanted: 2 fetches per read, a third of a trivial
# request's fetches. The next fetch waits until the records fetched are taken (queued.min.messages 1), then
# at most FETCH_BACKOFF_MS: a read of many records still streams, and a short read is over before it.
FETCH_BACKOFF_MS = 5


def config_part(request_id: str, config_json: str) -> tuple[str, SeriesPartRecord]:
    """(key, SeriesPart) holding the request's config."""
    return escape(request_id), series_part(request_id, config_json=config_json)


def parts(request_id: str, name: str, series_total: int, s: pd.Series, chunk_points: int = CHUNK_POINTS,
          key: str | None = None, xcorr_json: str | None = None) -> list[tuple[str, SeriesPartRecord]]:
    """(key, SeriesPart) for each chunk of `s`, in order; `key`: the keys' prefix (default: the series');
    `xcorr_json` goes with chunk 0."""
    key = key or series_key(request_id, name)
    stamps, values, freq = to_epoch(s)
    regenerated = _stamps(int(stamps[0]), len(stamps), freq) if len(stamps) else None
    regular = regenerated is not None and np.array_equal(regenerated, stamps)
    chunks = max(1, -(-len(stamps) // chunk_points))
    out = []
    for chunk in range(chunks):
        lo, hi = chunk * chunk_points, min(len(stamps), (chunk + 1) * chunk_points)
        out.append((f"{key}/{chunk}", series_part(
            request_id, series=name, series_total=series_total, chunk=chunk, chunks=chunks, points=len(stamps),
            frequency=freq, start_us=int(stamps[lo]) if hi > lo else 0,
            timestamps_us=None if regular else stamps[lo:hi].astype("<i8").tobytes(),
            values=values[lo:hi].astype("<f8").tobytes(), xcorr_json=xcorr_json if chunk == 0 else None)))
    return out


def regressor_parts(request_id: str, s: pd.Series, chunk_points: int = CHUNK_POINTS
                    ) -> list[tuple[str, SeriesPartRecord]]:
    """(key, SeriesPart) for each chunk of an additional regressor (`s.name`), stored like a series (its own
    dates, which need not be regular); the series' refs point at them (`series_ref(regressors=...)`)."""
    name = str(s.name)
    return parts(request_id, name, 0, s, chunk_points, key=f"{escape(request_id)}/regressor/{escape(name)}")


def regressor_names(ref: SeriesRefRecord | None) -> tuple[str, ...]:
    """The additional regressors a ref's series has (none on refs written before they existed)."""
    return tuple(r["name"] for r in (ref or {}).get("regressors") or ())


def assemble(chunks: Sequence[SeriesPartRecord], name: str) -> pd.Series:
    """The series from its SeriesPart chunks, in order."""
    values = [np.frombuffer(part["values"], dtype="<f8") for part in chunks]
    freq = chunks[0]["frequency"] if chunks else ""
    series: pd.Series | None
    if chunks and all(part["timestamps_us"] is None for part in chunks):
        spans = tuple((part["start_us"], len(v)) for part, v in zip(chunks, values, strict=True))
        make = _regular_index if sum(n for _, n in spans) <= INDEX_CACHE_POINTS else _regular_index.__wrapped__
        index = make(spans, freq)
        series = None if index is None else pd.Series(np.concatenate(values), index=index, name=name)
    else:
        stamps = [np.frombuffer(part["timestamps_us"], dtype="<i8") if part["timestamps_us"] is not None
                  else _stamps(part["start_us"], len(v), part["frequency"])
                  for part, v in zip(chunks, values, strict=True)]
        series = None if any(t is None for t in stamps) else from_epoch(
            np.concatenate(stamps) if stamps else np.array([], dtype=np.int64),  # type: ignore[arg-type]
            np.concatenate(values) if values else np.array([]), freq, name=name)
    if series is None:
        raise ValueError(f"series {name!r}: its timestamps cannot be regenerated from {freq!r}")
    return series


@functools.lru_cache(maxsize=64)
def _regular_index(chunks: tuple[tuple[int, int], ...], freq: str) -> pd.DatetimeIndex | None:
    """The index (start, points) chunks of `freq` make. Cached: the series of a request mostly share one, and
    generating it (pandas builds calendar offsets such as month starts in Python) was most of the predictor's
    own CPU on many short series; an index is immutable, so series share it safely. At most 64 × 100k points."""
    stamps = [_stamps(start, points, freq) for start, points in chunks]
    if any(s is None for s in stamps):
        return None
    joined = np.concatenate(stamps)  # type: ignore[arg-type]
    return pd.DatetimeIndex(from_epoch(joined, np.zeros(len(joined)), freq).index)


def _stamps(start_us: int, periods: int, freq: str) -> np.ndarray | None:
    """`regular_stamps`, cached up to INDEX_CACHE_POINTS points (read-only arrays: they are shared)."""
    return _cached_stamps(start_us, periods, freq) if periods <= INDEX_CACHE_POINTS else regular_stamps(
        start_us, periods, freq)


@functools.lru_cache(maxsize=64)
def _cached_stamps(start_us: int, periods: int, freq: str) -> np.ndarray | None:
    stamps = regular_stamps(start_us, periods, freq)
    if stamps is not None:
        stamps.setflags(write=False)
    return stamps


def _size(record: dict[str, Any]) -> int:
    return len(record["values"]) + len(record["timestamps_us"] or b"") + len(record["config_json"] or "")


class SeriesMissingError(LookupError):
    """The record a ref points at is not on the topic (any more): past retention, or never written."""


class SeriesStore:
    """Reads SeriesPart records by position, caching the last ones read (at most `cache_records` records and
    `cache_bytes` bytes; thread-safe; blocking: call it from a thread in an event loop)."""

    def __init__(self, bootstrap: str, cache_records: int = 4096, cache_bytes: int = CACHE_BYTES,
                 timeout_s: float = READ_TIMEOUT_S) -> None:
        self.bootstrap, self.cache_records, self.cache_bytes = bootstrap, cache_records, cache_bytes
        self.timeout_s = timeout_s
        self._cache: OrderedDict[tuple[int, int], dict[str, Any]] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()
        self._consumer: Any = None
        self.reads = 0  # records read from the broker (for tests and benches)

    def config_json(self, ref: SeriesRefRecord) -> str:
        part = self.records(ref["partition"], [ref["config_offset"]])[0]
        if part["config_json"] is None:
            raise SeriesMissingError(f"series offset {ref['partition']}/{ref['config_offset']} holds no config")
        return part["config_json"]

    def series(self, ref: SeriesRefRecord, name: str) -> pd.Series:
        chunks = self.records(ref["partition"], ref["offsets"])
        return assemble(chunks, name)

    def tail(self, ref: SeriesRefRecord, name: str, points: int) -> pd.Series:
        """The last `points` of the series, read from its last chunks only."""
        partition, offsets = ref["partition"], ref["offsets"]
        first = len(offsets) - 1
        while first > 0 and sum(len(r["values"]) // 8 for r in self.records(partition, offsets[first:])) < points:
            first -= 1
        s = assemble(self.records(partition, offsets[first:]), name)
        return s.iloc[-points:] if points > 0 else s.iloc[:0]

    def regressors(self, ref: SeriesRefRecord) -> dict[str, pd.Series]:
        """The series' additional regressors, each on its own dates (forecasting.regressors.align puts them
        on the series')."""
        return {r["name"]: assemble(self.records(ref["partition"], r["offsets"]), r["name"])
                for r in ref.get("regressors") or ()}

    def series_and_config(self, ref: SeriesRefRecord, name: str) -> tuple[pd.Series, str]:
        """What a unit needs, read together: one seek when the config lies near the series (most requests)."""
        self.records(ref["partition"], [ref["config_offset"], *ref["offsets"]])
        return self.series(ref, name), self.config_json(ref)

    def records(self, partition: int, offsets: Sequence[int]) -> list[SeriesPartRecord]:
        with self._lock:
            missing = sorted({o for o in offsets if (partition, o) not in self._cache})
            if missing:
                for offset, record in self._read(partition, missing).items():
                    if (partition, offset) not in self._cache:
                        self._cache[(partition, offset)] = record
                        self._cached_bytes += _size(record)
            found = []
            for o in offsets:
                record = self._cache.get((partition, o))
                if record is None:
                    raise SeriesMissingError(f"no record at series offset {partition}/{o} (past retention?)")
                self._cache.move_to_end((partition, o))
                found.append(record)
            keep = len(offsets)  # the records just asked for are the most recent: never evicted here
            while len(self._cache) > keep and (len(self._cache) > self.cache_records
                                               or self._cached_bytes > self.cache_bytes):
                self._cached_bytes -= _size(self._cache.popitem(last=False)[1])
            return found

    def _read(self, partition: int, wanted: list[int]) -> dict[int, dict[str, Any]]:
        """Wanted offsets (sorted) read in runs: one seek per run of nearby offsets."""
        from timex_stream.runtime.kafka import consumer  # deferred: confluent clients only where reads happen

        if self._consumer is None:
            self._consumer = consumer(self.bootstrap, "timex-series-store", **{
                "enable.partition.eof": True, "fetch.wait.max.ms": FETCH_WAIT_MS, "queued.min.messages": 1,
                "fetch.queue.backoff.ms": FETCH_BACKOFF_MS})
        got: dict[int, dict[str, Any]] = {}
        runs: list[list[int]] = []
        for o in wanted:
            if runs and o - runs[-1][-1] <= SEEK_GAP:
                runs[-1].append(o)
            else:
                runs.append([o])
        for run in runs:
            self._consumer.assign([TopicPartition(SERIES.name, partition, run[0])])
            want, last = set(run), run[-1]
            deadline = now_ms() + self.timeout_s * 1000
            while want and now_ms() < deadline:
                msg = self._consumer.poll(1.0)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == -191:  # _PARTITION_EOF: nothing more to read
                        break
                    continue
                if msg.offset() in want:
                    got[msg.offset()] = decode_as(SERIES.value, msg.value())  # type: ignore[arg-type]
                    self.reads += 1
                    want.discard(msg.offset())
                if msg.offset() >= last:
                    break
            got.update(self._ahead())
        self._consumer.unassign()
        return got

    def _ahead(self) -> dict[int, dict[str, Any]]:
        """Up to READ_AHEAD records that follow, as far as they are already fetched (no waiting)."""
        got: dict[int, dict[str, Any]] = {}
        # Never more than the cache keeps: records read ahead evict older ones, and a small cache that evicts
        # what it is asked for next re-reads it with another READ_AHEAD each time (measured: a validator with
        # 64 records read 174,000 records for 750 reads of a 500-series request, 8 s of decoding).
        for _ in range(min(READ_AHEAD, self.cache_records // 4)):
            msg = self._consumer.poll(0)
            if msg is None or msg.error():
                break
            got[msg.offset()] = decode_as(SERIES.value, msg.value())  # type: ignore[arg-type]
            self.reads += 1
        return got

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None


def history(store: SeriesStore, best: BestModelRecord) -> pd.Series:
    """The whole history of a BestModel's series, read where its `series_ref` points; a record from before
    the claim check (no ref) carries its whole history itself."""
    ref = best.get("series_ref")
    if ref is None:
        tail = history_of(best)
        return from_epoch(tail.stamps_us, tail.values, "", name=best["series"])
    return store.series(ref, best["series"])


class MemoryStore(SeriesStore):
    """SeriesParts held in memory at (partition 0, their index): what the pure tests use in place of the topic
    (`Outcome.datasets(MemoryStore.positions(...))`)."""

    def __init__(self, stored: Sequence[tuple[str, dict[str, Any]]] = ()) -> None:
        super().__init__("")
        self.held: list[dict[str, Any]] = []
        self.add(stored)

    def add(self, stored: Sequence[tuple[str, dict[str, Any]]]) -> list[tuple[int, int]]:
        """Hold `stored` (key, SeriesPart) records; returns their positions."""
        first = len(self.held)
        self.held.extend(record for _, record in stored)
        return [(0, first + i) for i in range(len(stored))]

    def _read(self, partition: int, wanted: list[int]) -> dict[int, dict[str, Any]]:
        return {o: self.held[o] for o in wanted if partition == 0 and 0 <= o < len(self.held)}
