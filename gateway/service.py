"""`timex-stream service gateway`: the HTTP API on TIMEX_GATEWAY_HOST:TIMEX_GATEWAY_PORT (default 127.0.0.1:8000),
with bearer tokens when TIMEX_API_TOKENS is set and per-user rate limits."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from gateway.api import create_app
from gateway.auth import TokenConfigError, TokenTable, parse_tokens
from gateway.ratelimit import RateLimiter
from gateway.state import RequestStore
from timex_stream.runtime.kafka import ensure_topics, producer
from timex_stream.runtime.logs import configure_logging, redact_in_logs
from timex_stream.runtime.settings import Settings

log = logging.getLogger("gateway")


def main(settings: Settings) -> int:
    configure_logging("gateway", settings.log_level)
    if not settings.bootstrap_servers:
        print("KAFKA_BOOTSTRAP_SERVERS is not set (`timex-stream up` sets it for its services)", file=sys.stderr)
        return 2
    tokens = None
    if settings.api_tokens:
        try:
            pairs = parse_tokens(settings.api_tokens)
        except TokenConfigError as exc:  # names the bad entry, never the token
            print(f"gateway: {exc}", file=sys.stderr)
            return 2
        redact_in_logs(*(token for _, token in pairs))
        tokens = TokenTable(pairs)
        log.info("API tokens on: %d users", len({user for user, _ in pairs}))
    else:
        log.info("API tokens off (TIMEX_API_TOKENS unset): every request is everyone's")
    ensure_topics(settings.bootstrap_servers)  # a gateway started first must not wait for topics forever
    store = RequestStore(settings.bootstrap_servers, settings.api_kafka_users, settings.gateway_max_requests)
    store.start()
    prod = producer(settings.bootstrap_servers)
    def listening(_banner: str) -> None:  # aiohttp's `print`: called once every socket is bound, not before
        log.info("gateway on http://%s:%d", settings.gateway_host, settings.gateway_port)

    try:
        # SIGTERM/SIGINT stop the server gracefully; SSE streams are cut after shutdown_timeout.
        app = create_app(store, prod, tokens,
                         writes=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
                         reads=RateLimiter(settings.read_rate_limit_per_s, int(2 * settings.read_rate_limit_per_s)),
                         limits=settings.limits, restarts=settings.restarts)
        web.run_app(app, host=settings.gateway_host, port=settings.gateway_port,
                    print=listening, access_log=None, shutdown_timeout=5)
    finally:
        prod.flush(10)
        store.stop()
    return 0
