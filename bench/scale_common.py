"""What bench/scale_series.py and bench/long_series.py share: a broker and the three stream services, a CSV
served on 127.0.0.1, one request followed to its end, the core alone on the same config, bytes each topic
holds on the broker's disk and the peak resident memory of each service."""

from __future__ import annotations

import dataclasses
import http.server
import json
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

from forecasting.config import parse_config  # noqa: E402
from forecasting.pipeline import forecast_all  # noqa: E402
from schemas import CATALOGUE  # noqa: E402
from schemas.topics import DATASETS  # noqa: E402
from timex_stream.broker import EmbeddedKafka  # noqa: E402
from timex_stream.follow import follow  # noqa: E402
from timex_stream.kafka import ensure_topics, producer  # noqa: E402
from timex_stream.settings import Settings  # noqa: E402
from timex_stream.stack import Stack, wait_for_members  # noqa: E402
from timex_stream.submit import submit  # noqa: E402


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


@dataclasses.dataclass
class Running:
    kafka: EmbeddedKafka
    stack: Stack
    base_url: str
    files: dict[str, bytes]

    def run(self, config: dict[str, Any], timeout: float = 3600) -> tuple[float, Any, dict[str, int]]:
        """Submit, follow to the end: (wall seconds, RequestView, bytes each topic gained)."""
        before = topic_bytes(self.kafka)
        prod = producer(self.kafka.bootstrap_servers)
        t0 = time.perf_counter()
        rid = submit(prod, config, origin="bench")
        view = follow(self.kafka.bootstrap_servers, [rid], timeout=timeout)[rid]
        wall = time.perf_counter() - t0
        time.sleep(2)  # let the broker write what the last answer's followers produced
        after = topic_bytes(self.kafka)
        return wall, view, {t: after[t] - before[t] for t in after if after[t] != before[t]}


@contextmanager
def running(concurrency: int, env: dict[str, str] | None = None, predictors: int = 1) -> Iterator[Running]:
    """An embedded broker and the stream services (`predictors` predictor processes of `concurrency` pool
    workers each) in a temp data dir, and a 127.0.0.1 server of `Running.files`; all stopped on exit."""
    os.environ.update(TIMEX_URL_ALLOWLIST="127.0.0.0/8", TIMEX_PREDICTOR_CONCURRENCY=str(concurrency),
                      TIMEX_LOG_LEVEL="WARNING", **(env or {}))
    files: dict[str, bytes] = {}
    httpd, base = serve_bytes(files)
    cache = Settings.from_env().cache_dir
    with tempfile.TemporaryDirectory(prefix="timex-bench-") as tmp, EmbeddedKafka(cache) as kafka:
        ensure_topics(kafka.bootstrap_servers)
        settings = dataclasses.replace(Settings.from_env(), bootstrap_servers=kafka.bootstrap_servers,
                                       data_dir=Path(tmp))
        stack = Stack(settings, only=["ingestion", "predictor", "validator"])
        try:
            stack.start()
            for i in range(2, predictors + 1):
                stack.launch("predictor", instance=f"predictor-{i}")
            wait_for_members(kafka.bootstrap_servers, "timex-predictor", DATASETS.name, predictors)
            yield Running(kafka, stack, base, files)
        finally:
            stack.stop()
            httpd.shutdown()


def print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)
