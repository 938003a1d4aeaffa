"""The side-by-side baseline of a trivial request: `python bench/baseline_http.py [--requests 200]`.

Not a product: a minimal in-process HTTP service (stdlib `http.server`) around the same core the system runs
(`forecasting.data.load_series` and the one selection protocol, `forecasting.pipeline`, every unit run in the
request's thread), answering the trivial request of bench/latency.py (1 series × 1,000 points, naive) with the
best model and its forecast. A client in the same process sends it `--requests` times one after the other
over one keep-alive connection. Prints p50/p99 (ms, the first request apart), CPU ms per request (this one
process: service and client) and requests/s; the latency bench shows it as a row beside the system's, so the
ratio is in its table. Writes bench/results/baseline_http.json.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import threading
import time
from concurrent.futures import Executor, Future
from typing import Any

from latency import trivial_config, trivial_csv
from scale_common import quantile_ms, save

from forecasting.config import ConfigError, parse_config
from forecasting.data import DataError, load_series
from forecasting.pipeline import _run as run_core  # the pipeline's whole protocol, on the pool it is given
from forecasting.workers import init_worker


class InThread(Executor):
    """Runs each unit at once in the caller's thread: a trivial request is cheaper than any hand-off."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        done: Future = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, as a pool would
            done.set_exception(exc)
        return done


def answer(body: bytes) -> tuple[int, dict[str, Any]]:
    """POST body {"config": {...}, "csv": "..."} → (status, answer): the same validation and core as the system."""
    try:
        request = json.loads(body)
        config = parse_config(request["config"]).config
        series = load_series(config, request["csv"].encode()).series
    except (ValueError, KeyError, TypeError, ConfigError, DataError) as exc:
        return 400, {"error": str(exc)}
    chosen = run_core(config, series, InThread(), fetch=lambda url: b"", historical_multivariate=True)
    out = {}
    for name, choice in chosen.items():
        best = choice.best
        out[name] = None if best is None else {"model": best.spec.model, "metrics": best.metrics,
                                               "forecast": best.forecast.to_dict() if best.forecast else None}
    return 200, out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses one connection
    # headers and body go out in two writes: with Nagle on, the body waits for the client's delayed ACK (40 ms)
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        status, out = answer(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        data = json.dumps(out, allow_nan=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def measure(n: int = 200, points: int = 1000) -> dict[str, Any]:
    init_worker()  # one BLAS thread, the model libraries loaded: as a pool worker
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    body = json.dumps({"config": trivial_config(), "csv": trivial_csv(points).decode()}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=60)
    seconds: list[float] = []
    try:
        for i in range(n + 1):  # the first, cold request apart
            if i == 1:
                cpu0, wall0 = time.process_time(), time.perf_counter()
            t0 = time.perf_counter()
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200 or not json.loads(resp.read()):
                raise RuntimeError(f"the baseline answered {resp.status}")
            seconds.append(time.perf_counter() - t0)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        conn.close()
        httpd.shutdown()
    warm = seconds[1:]
    return {"path": "baseline: in-process http.server, same core", "requests": n,
            "first_ms": round(1000 * seconds[0], 1), "p50_ms": quantile_ms(warm, 0.5),
            "p90_ms": quantile_ms(warm, 0.9), "p99_ms": quantile_ms(warm, 0.99), "max_ms": round(1000 * max(warm), 1),
            "cpu_ms_per_request": round(1000 * cpu / n, 2), "requests_per_s": round(n / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--points", type=int, default=1000)
    args = parser.parse_args()
    out = measure(args.requests, args.points)
    print(json.dumps(out, indent=2))
    save("baseline_http", out)


if __name__ == "__main__":
    main()
