"""`timex-stream service gateway`: the HTTP API on TIMEX_GATEWAY_HOST:TIMEX_GATEWAY_PORT (default 127.0.0.1:8000)."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from gateway.api import create_app
from gateway.state import RequestStore
from timex_stream.kafka import ensure_topics, producer
from timex_stream.logs import configure_logging
from timex_stream.settings import Settings

log = logging.getLogger("gateway")


def main(settings: Settings) -> int:
    configure_logging("gateway", settings.log_level)
    if not settings.bootstrap_servers:
        print("KAFKA_BOOTSTRAP_SERVERS is not set (`timex-stream up` sets it for its services)", file=sys.stderr)
        return 2
    ensure_topics(settings.bootstrap_servers)  # a gateway started first must not wait for topics forever
    store = RequestStore(settings.bootstrap_servers)
    store.start()
    prod = producer(settings.bootstrap_servers)
    log.info("gateway on http://%s:%d", settings.gateway_host, settings.gateway_port)
    try:
        # SIGTERM/SIGINT stop the server gracefully; SSE streams are cut after shutdown_timeout.
        web.run_app(create_app(store, prod, settings.limits), host=settings.gateway_host, port=settings.gateway_port,
                    print=None, access_log=None, shutdown_timeout=5)
    finally:
        prod.flush(10)
        store.stop()
    return 0
