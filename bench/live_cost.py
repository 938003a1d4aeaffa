"""The live service's CPU per observation without a broker: `python bench/live_cost.py [--series 250]
[--batches 20] [--points 1] [--warm 60] [--profile FILE]`.

The live service's own code path (live/follower.py `Follower._fold` and `_revise`, the revisions' Avro
encoding) on bench/live.py's stream: four standing requests (arima, autoets, theta, naive) of `--series` series
each, long JSON records keyed by the series, 30 points of history a series (fitted in this process) and `--warm`
batches (set-up, not measured), then `--batches` batches of `--points` observations per series (one revision per
series per batch, as at a rate where a poll takes each series' new points). The records are the bytes
bench/live.py produces; the sender encodes every record (as live/revisions.py does) and keeps a digest of what
would be written, so a change meant to save time only can be checked to write the same bytes (`digest`).

Prints CPU µs per observation of each phase (decode + fold: `_fold`; revise + encode: `_revise`) and per model,
the CPU of a follower's cycle that brings nothing new (`idle_cycle_ms`: it looks at each of its series), and,
with `--profile FILE`, writes a cProfile of the measured batches (`python -m pstats FILE`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# bench/ is first on the path when this runs as a script, and its live.py would hide the live service's package.
BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [str(Path(BENCH).parent)] + [p for p in sys.path if p != BENCH] + [BENCH]

from forecasting.live.follow import Choice  # noqa: E402
from live.follower import Follower  # noqa: E402
from live.revisions import encode_record  # noqa: E402
from schemas import Topic  # noqa: E402
from timex_stream.runtime.settings import Settings  # noqa: E402


def _bench_live() -> Any:
    """bench/live.py (its stream and configs), by its path: `import live` is the service."""
    spec = importlib.util.spec_from_file_location("bench_live", Path(BENCH) / "live.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_LIVE = _bench_live()
Stream, config = _LIVE.Stream, _LIVE.config


class Message:
    """What the follower reads of a confluent-kafka message."""

    def __init__(self, topic: str, offset: int, key: bytes, value: bytes) -> None:
        self._topic, self._offset, self._key, self._value = topic, offset, key, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value


class Sender:
    """Encodes what the follower sends (as the app's producer is given it) and digests the revisions' bytes."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.revisions = 0

    async def send(self, topic: Topic, key: str, record: dict[str, Any]) -> None:
        assert topic.value is not None
        value = encode_record(topic.value, record)
        if topic.name == "accuracy":
            self.digest.update(key.encode() + value)

    async def send_each(self, topics: Sequence[Topic], key: str, record: dict[str, Any]) -> None:
        assert topics[0].value is not None
        value = encode_record(topics[0].value, record)
        self.digest.update(key.encode() + value)
        self.revisions += 1

    async def ship(self) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def landed(self, handles: Sequence[Any]) -> list[tuple[int, int]]:
        return [(0, 0) for _ in handles]


class Pool:
    """The unit pool's interface, in this process (the fits are set-up)."""

    async def run(self, _key: str, fn: Any, arg: Any) -> Any:
        return fn(arg)


IDLE_CYCLES = 20


async def _dead_letter(_msg: Any, _reason: str) -> None:
    return None


async def run(series: int, batches: int, points: int, profile: str | None, warm: int = 60) -> dict[str, Any]:
    stream = Stream(30, per_request=series)
    sender, settings = Sender(), Settings()
    followers: dict[str, Follower] = {}
    for model, topic in stream.topics.items():
        standing = {"config_json": json.dumps(config(topic, model, stream.history, 10_000)), "history_csv": None}

        def known(_name: str, model: str = model) -> Choice:
            return Choice(model, "none", 0, {}, 1e9)  # no drift: bench/live.py's re-selections are not this

        followers[topic] = Follower(f"bench-{model}", standing, settings, sender, _dead_letter, Pool(),  # type: ignore[arg-type]
                                    known, {})
    offsets = dict.fromkeys(stream.topics.values(), 0)

    def batch(n: int) -> dict[str, list[Message]]:
        out: dict[str, list[Message]] = {t: [] for t in stream.topics.values()}
        for _ in range(n):
            for i in range(len(stream.series)):
                topic, key, value, _ = stream.record(i)
                out[topic].append(Message(topic, offsets[topic], key, value))
                offsets[topic] += 1
        return out

    for topic, msgs in batch(stream.history).items():  # the history: ready, fitted (in-process), first revision
        await followers[topic]._fold(msgs)
    await asyncio.sleep(0)
    while any(f.fitting for f in followers.values()):
        await asyncio.sleep(0.01)
    for f in followers.values():
        await f._revise()
    assert all(s.model is not None for f in followers.values() for s in f.series.values())
    for _ in range(warm):  # the accuracy windows filled, as in a stream that has run for a while
        msgs = batch(points)
        for topic, follower in followers.items():
            await follower._fold(msgs[topic])
            await follower._revise()
    fold_s = dict.fromkeys(stream.topics.values(), 0.0)
    revise_s = dict.fromkeys(stream.topics.values(), 0.0)
    prof = cProfile.Profile() if profile else None
    observations = 0
    for _ in range(batches):
        msgs = batch(points)
        if prof:
            prof.enable()
        for topic, follower in followers.items():
            t0 = time.process_time()
            await follower._fold(msgs[topic])
            t1 = time.process_time()
            await follower._revise()
            t2 = time.process_time()
            fold_s[topic] += t1 - t0
            revise_s[topic] += t2 - t1
            observations += len(msgs[topic])
        if prof:
            prof.disable()
    if prof and profile:
        prof.dump_stats(profile)
    t0 = time.process_time()
    for _ in range(IDLE_CYCLES):  # a poll that brought nothing new: every series looked at, none revised
        for follower in followers.values():
            await follower._fold([])
            await follower._revise()
    idle_ms = 1e3 * (time.process_time() - t0) / IDLE_CYCLES / len(followers)
    per = observations / len(followers)
    models = {model: {"fold_us": round(1e6 * fold_s[t] / per, 1), "revise_us": round(1e6 * revise_s[t] / per, 1)}
              for model, t in stream.topics.items()}
    total = sum(fold_s.values()) + sum(revise_s.values())
    return {"series": len(stream.series), "batches": batches, "points_per_batch": points,
            "observations": observations, "revisions": sender.revisions,
            "us_per_observation": round(1e6 * total / observations, 1),
            "fold_us": round(1e6 * sum(fold_s.values()) / observations, 1),
            "revise_us": round(1e6 * sum(revise_s.values()) / observations, 1),
            "models": models, "idle_cycle_ms": round(idle_ms, 3), "digest": sender.digest.hexdigest()[:16]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=250, help="series per request (four requests)")
    parser.add_argument("--batches", type=int, default=20, help="batches measured")
    parser.add_argument("--points", type=int, default=1, help="observations per series per batch")
    parser.add_argument("--warm", type=int, default=60,
                        help="batches before the measured ones (the accuracy windows of 50 actuals filled)")
    parser.add_argument("--profile", help="write a cProfile of the measured batches here")
    args = parser.parse_args()
    out = asyncio.run(run(args.series, args.batches, args.points, args.profile, args.warm))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
