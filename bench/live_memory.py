"""The live service's memory per kept point without a broker: `python bench/live_memory.py [--series 250]
[--points 1000] [--warm 50] [--window-points 10000] [--no-tracemalloc] [--top N]`.

bench/live_cost.py's in-process set-up (bench/live.py's four standing requests, arima, autoets, theta and naive,
of `--series` series each, 30 points of history a series, fitted in this process), then `--warm` observations a
series (checkpoint A: the accuracy rings and the re-selection window full) and `--points` more (checkpoint B),
one observation per series per batch, each batch folded and revised as the live service does. Between A and B
the only stores that grow are those that keep a point per final point (a window's finals, its duplicate check,
a model's bounded tail), so the growth divided by the final points kept in the meantime is the cost of a kept
point: per structure (deep sizes of every series' stores, shared objects counted once, in the order listed),
per model kind, in all (tracemalloc's traced bytes) and as RSS (`ru_maxrss`-free: /proc/self/statm's resident
pages, which include the allocator's slack), with the objects the cyclic garbage collector tracks and the CPU
of a full collection (it visits them all: Python objects per point make every full collection longer).

bench/live.py's 1,000,000 observations are 1,000 a series over its 1,000 series with `window_points` 10,000:
`--points 1000` here (with fewer `--series`, the bytes a point are the same).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

import numpy as np

# bench/ is first on the path when this runs as a script, and its live.py would hide the live service's package.
BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [str(Path(BENCH).parent)] + [p for p in sys.path if p != BENCH] + [BENCH]

import live_cost  # noqa: E402

from forecasting.live.follow import Choice, LiveSeries  # noqa: E402
from live.follower import Follower  # noqa: E402
from timex_stream.runtime.settings import Settings  # noqa: E402

# What a series keeps, by name: its window's stores, then the series' own, then its model and scorer.
STRUCTURES: dict[str, Any] = {
    "window.finals": lambda s: (s.window._final, s.window._final_labels, s.window._last),
    "window.seen_final": lambda s: s.window._seen_final,
    "window.open+untaken": lambda s: (s.window._open, s.window._untaken),
    "series.recent": lambda s: s.recent,
    "series.pending+unsent+since_trigger": lambda s: (s.pending, s.unsent, s.since_trigger),
    "model": lambda s: (s.model, s._ahead),
    "scorer": lambda s: s.scorer,
}
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def deep_size(root: Any, seen: set[int]) -> int:
    """Bytes of `root` and everything it references that `seen` does not hold yet (then added to it); types,
    modules and functions are shared by all series and not counted."""
    size, stack = 0, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)  # an array's data when it owns them; a view's are its base's
        stack.extend(gc.get_referents(obj))
        if isinstance(obj, np.ndarray) and obj.base is not None:
            stack.append(obj.base)
    return size


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def snapshot(followers: dict[str, Follower], kinds: dict[str, str], tracing: bool) -> dict[str, Any]:
    t0 = time.process_time()
    gc.collect()  # a full collection visits every object the collector tracks: its cost grows with them
    collect_ms = 1e3 * (time.process_time() - t0)
    sizes: dict[str, dict[str, int]] = {}
    kept: dict[str, int] = {}
    for topic, follower in followers.items():
        kind, seen, alive = kinds[topic], set(), []  # alive: the roots built here keep their ids till the end
        per = sizes.setdefault(kind, dict.fromkeys(STRUCTURES, 0))
        series: list[LiveSeries] = list(follower.series.values())
        for s in series:
            for name, get in STRUCTURES.items():
                alive.append(root := get(s))
                per[name] += deep_size(root, seen)
        kept[kind] = sum(min(s.final_points, s.window.window_points) for s in series)
    return {"sizes": sizes, "kept": kept, "rss": rss_bytes(), "gc_objects": len(gc.get_objects()),
            "gc_collect_ms": round(collect_ms, 1),
            "traced": tracemalloc.get_traced_memory()[0] if tracing else 0}


async def run(series: int, points: int, warm: int, window_points: int, tracing: bool,
              top: int = 0) -> dict[str, Any]:
    stream = live_cost.Stream(30, per_request=series)
    sender, settings = live_cost.Sender(), Settings()
    followers: dict[str, Follower] = {}
    kinds: dict[str, str] = {}
    for model, topic in stream.topics.items():
        standing = {"config_json": json.dumps(live_cost.config(topic, model, stream.history, window_points)),
                    "history_csv": None}

        def known(_name: str, model: str = model) -> Choice:
            return Choice(model, "none", 0, {}, 1e9)

        followers[topic] = Follower(f"bench-{model}", standing, settings, sender,  # type: ignore[arg-type]
                                    live_cost._dead_letter, live_cost.Pool(), known, {})
        kinds[topic] = model
    offsets = dict.fromkeys(stream.topics.values(), 0)

    def batch() -> dict[str, list[live_cost.Message]]:
        out: dict[str, list[live_cost.Message]] = {t: [] for t in stream.topics.values()}
        for i in range(len(stream.series)):
            topic, key, value, _ = stream.record(i)
            out[topic].append(live_cost.Message(topic, offsets[topic], key, value))
            offsets[topic] += 1
        return out

    async def feed(n: int) -> None:
        for _ in range(n):
            msgs = batch()
            for topic, follower in followers.items():
                await follower._fold(msgs[topic])
                await follower._revise()

    for _ in range(stream.history):  # the history: ready, fitted (in-process), first revision
        msgs = batch()
        for topic, follower in followers.items():
            await follower._fold(msgs[topic])
    while any(f.fitting for f in followers.values()):
        await asyncio.sleep(0.01)
    for f in followers.values():
        await f._revise()
    await feed(warm)
    if tracing:
        tracemalloc.start()
    a = snapshot(followers, kinds, tracing)
    before = tracemalloc.take_snapshot() if tracing and top else None
    await feed(points)
    b = snapshot(followers, kinds, tracing)
    if before is not None:  # where the traced growth was allocated
        for stat in tracemalloc.take_snapshot().compare_to(before, "lineno")[:top]:
            print(stat, file=sys.stderr)
    if tracing:
        tracemalloc.stop()
    kept = sum(b["kept"].values()) - sum(a["kept"].values())
    per_kind = {}
    for kind in b["sizes"]:
        k = b["kept"][kind] - a["kept"][kind]
        per_kind[kind] = {name: round((b["sizes"][kind][name] - a["sizes"][kind][name]) / k, 1)
                          for name in STRUCTURES}
        per_kind[kind]["all"] = round(sum(per_kind[kind].values()), 1)
    structures = {name: round(sum(b["sizes"][kd][name] - a["sizes"][kd][name] for kd in b["sizes"]) / kept, 1)
                  for name in STRUCTURES}
    return {"series": len(stream.series), "points": points, "window_points": window_points, "kept_points": kept,
            "bytes_per_kept_point": round(sum(structures.values()), 1), "structures": structures,
            "per_model": per_kind,
            "traced_bytes_per_kept_point": round((b["traced"] - a["traced"]) / kept, 1) if tracing else None,
            "rss_bytes_per_kept_point": round((b["rss"] - a["rss"]) / kept, 1),
            "rss_mb": [round(a["rss"] / 2**20, 1), round(b["rss"] / 2**20, 1)],
            "gc_objects": [a["gc_objects"], b["gc_objects"]], "gc_collect_ms": [a["gc_collect_ms"], b["gc_collect_ms"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=250, help="series per request (four requests)")
    parser.add_argument("--points", type=int, default=1000, help="observations a series between the checkpoints")
    parser.add_argument("--warm", type=int, default=50, help="observations a series before the first checkpoint")
    parser.add_argument("--window-points", type=int, default=10_000)
    parser.add_argument("--no-tracemalloc", action="store_true", help="faster: no traced bytes")
    parser.add_argument("--top", type=int, default=0, help="print the N source lines whose allocations grew most")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.series, args.points, args.warm, args.window_points,
                                     not args.no_tracemalloc, args.top))))


if __name__ == "__main__":
    main()
