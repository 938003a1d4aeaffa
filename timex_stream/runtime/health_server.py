"""`/health` and `/metrics` of a stream service that is no Faust app, as the Faust services serve theirs
(timex_stream.runtime.faust_app): the status, the partitions it was given, its uptime; its Prometheus registry."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from timex_stream.runtime.ports import free_port


async def serve_health(service: str, host: str, port: int, registry: CollectorRegistry,
                       assigned: Callable[[], list[str]]) -> web.AppRunner:
    """Serve until the returned runner is cleaned up; `port` 0: a free one."""
    started = time.time()

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": service, "assigned": assigned(),
                                  "uptime_s": round(time.time() - started, 1)})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    app = web.Application()
    app.add_routes([web.get("/health", health), web.get("/metrics", metrics)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port or free_port()).start()
    return runner
