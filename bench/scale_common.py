"""What the bench scripts share: a broker and the stream services (and the gateway when asked), a CSV served
on 127.0.0.1, one request followed to its end, the arrival time of every answer (`AnswerClock`), the core
alone on the same config, bytes each topic holds on the broker's disk, the peak resident memory of each
service, CPU seconds of a process tree, and the tables and JSON files under bench/results/."""

from __future__ import annotations

import dataclasses
import functools
import gc
import http.server
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from confluent_kafka import TopicPartition  # noqa: E402

from forecasting.config import parse_config  # noqa: E402
from forecasting.pipeline import forecast_all  # noqa: E402
from schemas import CATALOGUE  # noqa: E402
from schemas.topics import BEST_MODELS, CONFIGS, DATASETS, FAILURES  # noqa: E402
from timex_stream.runtime.kafka import consumer, ensure_topics, producer  # noqa: E402
from timex_stream.runtime.ports import free_port  # noqa: E402
from timex_stream.runtime.settings import Settings  # noqa: E402
from timex_stream.runtime.submit import submit  # noqa: E402
from timex_stream.tools.broker import EmbeddedKafka  # noqa: E402
from timex_stream.tools.follow import follow  # noqa: E402
from timex_stream.tools.stack import Stack, wait_for_members  # noqa: E402


def serve_bytes(files: dict[str, bytes]) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            body = files.get(self.path.lstrip("/"))
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def core_seconds(config: dict[str, Any], csv: bytes, workers: int) -> tuple[float, dict[str, Any]]:
    """Wall seconds of the core alone (forecasting.pipeline.forecast_all) and its best model per series."""
    parsed = parse_config(config).config
    t0 = time.perf_counter()
    results = forecast_all(parsed, csv, max_workers=workers)
    return time.perf_counter() - t0, {name: r.best.spec.model if r.best else None for name, r in results.items()}


def topic_bytes(kafka: EmbeddedKafka) -> dict[str, int]:
    """Bytes of log segments per catalogue topic on the broker's disk (compressed, as written)."""
    logs = kafka.data_dir / "kraft-logs"
    sizes: dict[str, int] = {}
    for topic in CATALOGUE:
        sizes[topic.name] = sum(f.stat().st_size for d in logs.glob(f"{topic.name}-*") if d.is_dir()
                                for f in d.glob("*.log"))
    return sizes


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def service_rss(stack: Stack) -> dict[str, float]:
    """Peak RSS of each service process and of the largest of its pool workers (grandchildren included)."""
    out: dict[str, float] = {}
    for name, proc in stack.children.items():
        out[name] = round(peak_rss_mb(proc.pid), 1)
        kids, seen = children(proc.pid), []
        while kids:
            pid = kids.pop()
            try:
                seen.append(peak_rss_mb(pid))
            except OSError:
                continue
            kids.extend(children(pid))
        if seen:
            out[f"{name} (largest child)"] = round(max(seen), 1)
    return out


def tree_cpu_seconds(pid: int, children_only: bool = False) -> float:
    """User + system CPU seconds of a live process and its live descendants, each with its children that
    ended and were reaped (cmdstan runs of a pool worker; a pool worker that was replaced)."""
    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True) + ([] if children_only else [root])
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


@dataclasses.dataclass
class Running:
    kafka: EmbeddedKafka
    stack: Stack
    base_url: str
    files: dict[str, bytes]
    gateway_url: str | None = None
    concurrency: int = 1
    last_cpu: dict[str, float] = dataclasses.field(default_factory=dict)

    def predictor_pids(self) -> list[int]:
        return [proc.pid for name, proc in self.stack.children.items() if name.startswith("predictor")]

    def set_predictors(self, count: int, concurrency: int) -> None:
        """Stop every predictor process, start `count` with `concurrency` pool workers each, and wait until
        each one holds partitions of `datasets` and its pool's workers (`settle`)."""
        for name in [n for n in self.stack.children if n.startswith("predictor")]:
            proc = self.stack.children.pop(name)
            proc.terminate()
            proc.wait(60)
        wait_for_members(self.kafka.bootstrap_servers, "timex-predictor", DATASETS.name, 0)
        for i in range(1, count + 1):
            self.stack.launch("predictor", instance="predictor" if i == 1 else f"predictor-{i}",
                              TIMEX_PREDICTOR_CONCURRENCY=str(concurrency))
        wait_for_members(self.kafka.bootstrap_servers, "timex-predictor", DATASETS.name, count)
        self.concurrency = concurrency
        settle(self)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of each service process, of its pool workers, and of the broker: where a run's
        CPU went (on 2 cores every service's CPU is taken from the fits)."""
        out = {name: tree_cpu_seconds(proc.pid) - tree_cpu_seconds(proc.pid, children_only=True)
               for name, proc in self.stack.children.items()}
        out.update({f"{name} workers": tree_cpu_seconds(proc.pid, children_only=True)
                    for name, proc in self.stack.children.items() if children(proc.pid)})
        if self.kafka.proc is not None:
            out["broker"] = tree_cpu_seconds(self.kafka.proc.pid)
        return out

    def run(self, config: dict[str, Any], timeout: float = 3600) -> tuple[float, Any, dict[str, int]]:
        """Submit, follow to the end: (wall seconds, RequestView, bytes each topic gained); the CPU each
        process spent on it is left in `last_cpu`."""
        before, cpu_before = topic_bytes(self.kafka), self.cpu_seconds()
        prod = producer(self.kafka.bootstrap_servers)
        t0 = time.perf_counter()
        rid = submit(prod, config, origin="bench")
        view = follow(self.kafka.bootstrap_servers, [rid], timeout=timeout)[rid]
        wall = time.perf_counter() - t0
        self.last_cpu = {k: round(v - cpu_before.get(k, 0.0), 2) for k, v in self.cpu_seconds().items()}
        time.sleep(2)  # let the broker write what the last answer's followers produced
        after = topic_bytes(self.kafka)
        return wall, view, {t: after[t] - before[t] for t in after if after[t] != before[t]}


def pool_workers(pid: int) -> int:
    """Worker processes of a service's unit pool: the children of its fork server (a child of the service)."""
    return sum(len(children(server)) for server in children(pid))


def settle(env: Running, quiet_cores: float = 0.25, window_s: float = 0.5, bound_s: float = 60.0) -> float:
    """Wait until the stack has started: each predictor's pool holds its workers (a Faust task starts it, at
    times seconds after the predictor joined its group, with the stack quiet in between) and the processes and
    the broker together use under `quiet_cores` over a `window_s` window. A measurement that began before
    counted that start (~1.3 CPU-s: the fork server loads the model libraries) as its requests' cost. Says so
    and goes on after `bound_s` (a busy machine: the figures then say what they say); returns the seconds waited."""
    t0 = time.perf_counter()
    last = sum(env.cpu_seconds().values())
    while time.perf_counter() - t0 < bound_s:
        time.sleep(window_s)
        now = sum(env.cpu_seconds().values())
        started = all(pool_workers(pid) >= env.concurrency for pid in env.predictor_pids())
        if started and now - last < quiet_cores * window_s:
            return time.perf_counter() - t0
        last = now
    print(f"the stack did not settle within {bound_s:.0f} s (pools not all started, or over {quiet_cores} cores "
          "busy): measuring anyway", file=sys.stderr, flush=True)
    return time.perf_counter() - t0


@contextmanager
def running(concurrency: int, env: dict[str, str] | None = None, predictors: int = 1,
            gateway: bool = False, ingestions: int = 1) -> Iterator[Running]:
    """An embedded broker and the stream services (`predictors` predictor processes of `concurrency` pool
    workers each, `ingestions` ingestion processes; the gateway too when `gateway`, its rate limits off) in a
    temp data dir, and a 127.0.0.1 server of `Running.files`; all stopped on exit."""
    os.environ.update(TIMEX_URL_ALLOWLIST="127.0.0.0/8", TIMEX_PREDICTOR_CONCURRENCY=str(concurrency),
                      TIMEX_LOG_LEVEL="WARNING", **(env or {}))
    if gateway:  # a bench sends far more than a user: the per-user limits would measure themselves
        os.environ.update(TIMEX_RATE_LIMIT_PER_S="0", TIMEX_READ_RATE_LIMIT_PER_S="0")
    files: dict[str, bytes] = {}
    httpd, base = serve_bytes(files)
    cache = Settings.from_env().cache_dir
    with tempfile.TemporaryDirectory(prefix="timex-bench-") as tmp, EmbeddedKafka(cache) as kafka:
        ensure_topics(kafka.bootstrap_servers)
        settings = dataclasses.replace(Settings.from_env(), bootstrap_servers=kafka.bootstrap_servers,
                                       data_dir=Path(tmp), gateway_host="127.0.0.1", gateway_port=free_port())
        stack = Stack(settings, only=["ingestion", "predictor", "validator"] + (["gateway"] if gateway else []))
        try:
            stack.start()
            for i in range(2, predictors + 1):
                stack.launch("predictor", instance=f"predictor-{i}")
            for i in range(2, ingestions + 1):
                stack.launch("ingestion", instance=f"ingestion-{i}")
            wait_for_members(kafka.bootstrap_servers, "timex-predictor", DATASETS.name, predictors)
            wait_for_members(kafka.bootstrap_servers, "timex-ingestion", CONFIGS.name, ingestions)
            gateway_url = f"http://127.0.0.1:{settings.gateway_port}" if gateway else None
            env = Running(kafka, stack, base, files, gateway_url, concurrency)
            settle(env)
            yield env
        finally:
            # Kafka clients left for the garbage collector are destroyed now, while the broker is up: one
            # destroyed after it stopped can wait forever in librdkafka (a bench hung at exit that way).
            gc.collect()
            stack.stop()
            httpd.shutdown()


def print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)


class AnswerClock:
    """When each request's answer reached a reader: a consumer thread tails `best-models` and `failures` from
    their ends at construction (explicit offsets, so nothing produced after that is missed) and notes the
    first arrival per request id (perf_counter seconds) without decoding: for a one-series request the
    first best-models record is the whole answer, and any failure counts as one (`failed`)."""

    def __init__(self, bootstrap: str) -> None:
        self.answered: dict[str, float] = {}
        self.failed: dict[str, float] = {}
        self._lock = threading.Condition()  # notified on each arrival: `wait` sleeps instead of polling
        self._stop = threading.Event()
        # The default fetch wait (500 ms): with fetch.min.bytes 1 the broker answers a fetch as soon as a record
        # lands, so a short wait adds no speed, only empty fetches (10 ms: 100 a second, idle).
        self._cons = consumer(bootstrap, f"timex-bench-clock-{os.getpid()}")
        positions = []
        for topic in (BEST_MODELS.name, FAILURES.name):
            for partition in self._cons.list_topics(topic, timeout=10).topics[topic].partitions:
                _, high = self._cons.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                positions.append(TopicPartition(topic, partition, high))
        self._cons.assign(positions)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            # poll, not consume(500, 0.1): consume returns when it holds 500 records or when the 0.1 s are up,
            # so a single answer waited for the rest of that window (latencies came in steps of 100 ms).
            msg = self._cons.poll(0.1)
            if msg is not None and not msg.error() and msg.key() is not None:
                now = time.perf_counter()
                into = self.answered if msg.topic() == BEST_MODELS.name else self.failed
                with self._lock:
                    into.setdefault(msg.key().decode(), now)
                    self._lock.notify_all()

    def at(self, rid: str) -> float | None:
        with self._lock:
            return self.failed.get(rid) or self.answered.get(rid)

    def wait(self, rid: str, timeout: float) -> float:
        """Seconds (perf_counter) when `rid` was answered; TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while (at := self.failed.get(rid) or self.answered.get(rid)) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"request {rid}: no answer within {timeout:.0f} s")
                self._lock.wait(left)
        return at

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._cons.close()


def quantile_ms(seconds: list[float], q: float) -> float:
    """The q-quantile (0..1, nearest rank) of `seconds`, in milliseconds."""
    ordered = sorted(seconds)
    return round(1000 * ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 1)


RESULTS = ROOT / "bench" / "results"
SUMMARY_KEYS = ("latency_p50_ms", "latency_p99_ms", "throughput_rps", "stream_overhead_ratio", "cpu_efficiency",
                "predictor_scaling_2x", "timex_wall_ratio", "m3_monthly_smape", "m3_monthly_owa", "m3_cpu_s_per_series",
                "live_p50_ms", "live_p99_ms", "live_max_rate", "live_cpu_ms_per_point", "live_rss_growth",
                "request_cpu_ms")


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, the load other processes put on them, and how fast a core is today."""
    return {"cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), "speed_ref_ms": speed_ref_ms(),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


@functools.cache
def speed_ref_ms() -> float:
    """CPU ms of a fixed pure-Python loop (the best of three, once a process). Machines of the same kind differ:
    the same code and bytes took 1.9× the CPU on 2026-12-07 as the day before (bench/live_cost.py 412 vs 217 µs an
    observation), so figures of different days compare only with this beside them."""
    best = math.inf
    for _ in range(3):
        started, total = time.process_time(), 0
        for i in range(1_000_000):
            total += i * i % 7
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def save(name: str, data: dict[str, Any]) -> Path:
    """Write bench/results/NAME.json (the machine's load included)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**data, "machine": machine()}, indent=2))
    return path


def update_summary(figures: dict[str, float | None], fresh: bool = False) -> Path:
    """bench/results/summary.json: every key of SUMMARY_KEYS, the ones given now replaced (`fresh`: the
    others null too, as `make bench` does); each key's measuring time under `measured_at`."""
    path = RESULTS / "summary.json"
    old = {} if fresh or not path.exists() else json.loads(path.read_text())
    summary = {k: old.get(k) for k in SUMMARY_KEYS}
    stamps = {} if fresh else dict(old.get("measured_at", {}))
    now = machine()["at"]
    for key, value in figures.items():
        assert key in SUMMARY_KEYS, key
        summary[key] = value
        stamps[key] = now
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**summary, "measured_at": stamps, "machine": machine()}, indent=2))
    return path


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """A plain-text table: one column per key of the first row."""
    columns = list(rows[0]) if rows else []
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print(f"\n{title}", flush=True)
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)), flush=True)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)
