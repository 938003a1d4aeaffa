"""Settings from environment variables: the one place a service reads its configuration.

Every variable is documented in the README; deployments (docker-compose, strimzi) set the same names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from forecasting.limits import RequestLimits


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


@dataclass(frozen=True)
class Settings:
    # None means "no cluster given": the CLI starts the embedded broker.
    bootstrap_servers: str | None = None
    # Authentication (Strimzi: SCRAM-SHA-512 over TLS); PLAINTEXT for the embedded broker and compose.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = field(default=None, repr=False)
    kafka_ssl_ca_location: str | None = None
    # The embedded broker of `make up` (a persistent data dir needs fixed ports: KRaft records them).
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    cache_dir: Path = field(default_factory=lambda: _cache_home() / "timex-stream")
    data_dir: Path = field(default_factory=lambda: _cache_home() / "timex-stream" / "data")
    log_level: str = "INFO"
    url_allowlist: tuple[str, ...] = ()
    download_max_bytes: int = 50 * 1024 * 1024
    download_timeout_s: float = 30.0
    predictor_concurrency: int = max(1, os.cpu_count() or 1)
    # Caps of one unit (one worker process): address space in MiB and wall-clock time. 2 workers x 4 GiB
    # leave most of a 24 GiB machine to the broker and the other services; a unit of a few hundred points
    # needs ~0.7 GiB of address space (~0.3 GiB resident). The time limit stays below the validator deadline.
    unit_memory_mb: int = 4096
    unit_timeout_s: float = 300.0
    validator_deadline_s: float = 900.0
    # A series with no new unit for this long gets its missing units sent to the predictors again.
    validator_stall_s: float = 60.0
    # A decided series' marker is forgotten this long after its answer (≥ the stall/deadline horizon).
    validator_forget_s: float = 1800.0
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    # Requests whose answers a gateway keeps in memory (least recently used go first, reloaded on demand).
    gateway_max_requests: int = 500
    webapp_host: str = "127.0.0.1"
    webapp_port: int = 5000
    gateway_url: str = "http://127.0.0.1:8000"
    # Gateway bearer auth: `user:token,...` or the path of a file with one `user:token` per line; None = no auth.
    api_tokens: str | None = field(default=None, repr=False)
    # The token the webapp sends to the gateway (`make up` sets it); None = the webapp asks its user.
    api_token: str | None = field(default=None, repr=False)
    # Gateway users who also see the requests sent straight to Kafka (no owner); `make up` names its `local`.
    api_kafka_users: tuple[str, ...] = ()
    # Per-user token buckets of a gateway process (0 turns one off): submissions + re-forecasts, and reads.
    rate_limit_per_s: float = 10.0
    rate_limit_burst: int = 50
    read_rate_limit_per_s: float = 100.0
    # Faust web server (health + metrics) of a stream service; 0 picks a free port.
    web_port: int = 0
    web_host: str = "127.0.0.1"
    # What one request may cost (TIMEX_MAX_*, read by the pure core's RequestLimits.from_env).
    limits: RequestLimits = field(default_factory=RequestLimits)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        d = cls()
        gateway_host = e.get("TIMEX_GATEWAY_HOST", d.gateway_host)
        gateway_port = int(e.get("TIMEX_GATEWAY_PORT", d.gateway_port))
        cache_dir = Path(e["TIMEX_CACHE_DIR"]) if e.get("TIMEX_CACHE_DIR") else d.cache_dir
        kafka_port = int(e.get("TIMEX_KAFKA_PORT", d.kafka_port))
        return cls(
            bootstrap_servers=e.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            kafka_security_protocol=e.get("KAFKA_SECURITY_PROTOCOL", d.kafka_security_protocol).upper(),
            kafka_sasl_mechanism=e.get("KAFKA_SASL_MECHANISM") or None,
            kafka_sasl_username=e.get("KAFKA_SASL_USERNAME") or None,
            kafka_sasl_password=e.get("KAFKA_SASL_PASSWORD") or None,
            kafka_ssl_ca_location=e.get("KAFKA_SSL_CA_LOCATION") or None,
            kafka_port=kafka_port,
            kafka_controller_port=int(e.get("TIMEX_KAFKA_CONTROLLER_PORT", kafka_port + 1)),
            cache_dir=cache_dir,
            data_dir=Path(e["TIMEX_DATA_DIR"]) if e.get("TIMEX_DATA_DIR") else cache_dir / "data",
            log_level=e.get("TIMEX_LOG_LEVEL", d.log_level).upper(),
            url_allowlist=tuple(x.strip() for x in e.get("TIMEX_URL_ALLOWLIST", "").split(",") if x.strip()),
            download_max_bytes=int(e.get("TIMEX_DOWNLOAD_MAX_BYTES", d.download_max_bytes)),
            download_timeout_s=float(e.get("TIMEX_DOWNLOAD_TIMEOUT_S", d.download_timeout_s)),
            predictor_concurrency=int(e.get("TIMEX_PREDICTOR_CONCURRENCY", d.predictor_concurrency)),
            unit_memory_mb=int(e.get("TIMEX_UNIT_MEMORY_MB", d.unit_memory_mb)),
            unit_timeout_s=float(e.get("TIMEX_UNIT_TIMEOUT_S", d.unit_timeout_s)),
            validator_deadline_s=float(e.get("TIMEX_VALIDATOR_DEADLINE_S", d.validator_deadline_s)),
            validator_stall_s=float(e.get("TIMEX_VALIDATOR_STALL_S", d.validator_stall_s)),
            validator_forget_s=float(e.get("TIMEX_VALIDATOR_FORGET_S", d.validator_forget_s)),
            gateway_host=gateway_host,
            gateway_port=gateway_port,
            gateway_max_requests=max(1, int(e.get("TIMEX_GATEWAY_MAX_REQUESTS", d.gateway_max_requests))),
            webapp_host=e.get("TIMEX_WEBAPP_HOST", d.webapp_host),
            webapp_port=int(e.get("TIMEX_WEBAPP_PORT", d.webapp_port)),
            gateway_url=e.get("TIMEX_GATEWAY_URL", f"http://{gateway_host}:{gateway_port}"),
            api_tokens=e.get("TIMEX_API_TOKENS") or None,
            api_token=e.get("TIMEX_API_TOKEN") or None,
            api_kafka_users=tuple(x.strip() for x in e.get("TIMEX_API_KAFKA_USERS", "").split(",") if x.strip()),
            rate_limit_per_s=float(e.get("TIMEX_RATE_LIMIT_PER_S", d.rate_limit_per_s)),
            rate_limit_burst=int(e.get("TIMEX_RATE_LIMIT_BURST", d.rate_limit_burst)),
            read_rate_limit_per_s=float(e.get("TIMEX_READ_RATE_LIMIT_PER_S", d.read_rate_limit_per_s)),
            web_port=int(e.get("TIMEX_WEB_PORT", d.web_port)),
            web_host=e.get("TIMEX_WEB_HOST", d.web_host),
            limits=RequestLimits.from_env(e),
        )

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) security settings; empty for PLAINTEXT."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return {}
        conf = {"security.protocol": self.kafka_security_protocol}
        optional = {"sasl.mechanism": self.kafka_sasl_mechanism, "sasl.username": self.kafka_sasl_username,
                    "sasl.password": self.kafka_sasl_password, "ssl.ca.location": self.kafka_ssl_ca_location}
        return conf | {k: v for k, v in optional.items() if v}

