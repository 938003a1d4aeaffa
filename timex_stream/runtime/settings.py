"""Settings from environment variables: the one place a service reads its configuration.

`VARIABLES` is the table of them, one row per variable: its name, the field it sets, how its text is read and
what it means, in the words of the README's "Configuration (environment variables)" table, which a test
renders from this table (with the request limits' variables of `forecasting.limits`) and compares; the
deployment tests take the names from it. `python -m timex_stream.runtime.settings` prints the README table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from forecasting.limits import ENV_VARS as LIMIT_VARS
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
    # Unit workers run this much nicer than their service: fits take the CPU the per-event work leaves (a live
    # stream's revisions keep their delays while a re-selection fits, bench/live.py's drift phase).
    unit_nice: int = 10
    # A request this small (points × units summed over its series) has its units run in the ingestion's own worker
    # (timex_stream.runtime.fast_lane); 0: every request goes to the predictors. The trivial request of the
    # benches (1,000 points, naive: 5 units) is 5,000; 10,000 cheap point-units cost about 0.1 s of CPU.
    fast_lane_max_work: int = 10_000
    fast_lane_timeout_s: float = 10.0
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
    # Live requests (standing requests that follow a source topic): what the live service takes on.
    live_max_requests: int = 100
    live_max_requests_per_user: int = 20
    live_max_series: int = 1_000
    # Records a standing request takes from its source topic per second (0: no limit); the rest wait on the topic.
    live_max_records_per_s: float = 10_000.0
    live_max_window_points: int = 100_000
    # Faust web server (health + metrics) of a stream service; 0 picks a free port.
    web_port: int = 0
    web_host: str = "127.0.0.1"
    # `make up`'s supervisor: how often this process's service was started again (shown on /metrics), and
    # the crash loop that stops the stack (a service restarted `supervisor_max_restarts` times in the window).
    restarts: int = 0
    supervisor_max_restarts: int = 5
    supervisor_window_s: float = 60.0
    # What one request may cost (TIMEX_MAX_*, read by the pure core's RequestLimits.from_env).
    limits: RequestLimits = field(default_factory=RequestLimits)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """From the variables in `env` (default: the process environment), each read as its row of `VARIABLES`
        says; an unset one keeps its default, or the default its row derives from the rows above."""
        e = os.environ if env is None else env
        d = cls()
        values: dict[str, Any] = {}
        for var in VARIABLES:  # in order: a derived default reads the rows above it
            raw = e.get(var.name)
            if raw is None or (raw == "" and var.blank_is_unset):
                values[var.field] = var.derived(values) if var.derived else getattr(d, var.field)
            else:
                values[var.field] = var.parse(raw)
        return cls(**values, limits=RequestLimits.from_env(e))

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) security settings; empty for PLAINTEXT."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return {}
        conf = {"security.protocol": self.kafka_security_protocol}
        optional = {"sasl.mechanism": self.kafka_sasl_mechanism, "sasl.username": self.kafka_sasl_username,
                    "sasl.password": self.kafka_sasl_password, "ssl.ca.location": self.kafka_ssl_ca_location}
        return conf | {k: v for k, v in optional.items() if v}



def _names(raw: str) -> tuple[str, ...]:
    """A comma-separated list; blanks dropped."""
    return tuple(x.strip() for x in raw.split(",") if x.strip())


def _niceness(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 19:
        raise ValueError(f"a niceness from 0 to 19 (an increment: a process may not raise its priority), not {value}")
    return value


def _optional(raw: str) -> str | None:
    return raw or None


@dataclass(frozen=True)
class Var:
    """One environment variable: the Settings field it sets and the README's row about it."""

    name: str
    field: str
    parse: Callable[[str], Any]
    meaning: str  # the README's text
    # The default from the values read before it (Settings() has the plain one); None: the field's default.
    derived: Callable[[dict[str, Any]], Any] | None = None
    shown: str | None = None  # the README's default when the field's value is not it (computed, derived)
    note: str = ""  # said after the default in the README, e.g. what unset means
    blank_is_unset: bool = False  # set to "" means unset (otherwise "" is parsed like any text)


# Rows next to each other with the same meaning share one row of the README.
VARIABLES: tuple[Var, ...] = (
    Var("KAFKA_BOOTSTRAP_SERVERS", "bootstrap_servers", _optional, "Kafka cluster to use",
        note=": embedded broker"),
    Var("KAFKA_SECURITY_PROTOCOL", "kafka_security_protocol", str.upper,
        "`SASL_SSL` on Strimzi (set by the manifests)"),
    *(Var(f"KAFKA_SASL_{x.upper()}", f"kafka_sasl_{x}", _optional, "SCRAM credentials (KafkaUser secret)")
      for x in ("mechanism", "username", "password")),
    Var("KAFKA_SSL_CA_LOCATION", "kafka_ssl_ca_location", _optional, "cluster CA certificate file"),
    Var("TIMEX_KAFKA_PORT", "kafka_port", int, "ports of the embedded broker"),
    Var("TIMEX_KAFKA_CONTROLLER_PORT", "kafka_controller_port", int, "ports of the embedded broker",
        derived=lambda v: v["kafka_port"] + 1),
    Var("TIMEX_CACHE_DIR", "cache_dir", Path, "Kafka jars (fetched once)", shown="`~/.cache/timex-stream`",
        blank_is_unset=True),
    Var("TIMEX_DATA_DIR", "data_dir", Path, "embedded broker data and logs of `make up`",
        derived=lambda v: v["cache_dir"] / "data", shown="`$TIMEX_CACHE_DIR/data`", blank_is_unset=True),
    Var("TIMEX_LOG_LEVEL", "log_level", str.upper, "log level of the services"),
    Var("TIMEX_URL_ALLOWLIST", "url_allowlist", _names,
        "`host:port` (exact) or CIDR entries the ingestion may download from although loopback, private, "
        "link-local, metadata or otherwise non-public (see `ingestion/url_guard.py`)"),
    *(Var(name, f, parse, "download limits: the body size cap (a request limit: the largest CSV a request may "
          "download; nothing is decompressed); a connect or read waiting longer than the timeout fails, and the "
          "whole download, redirects included, is cut at 4 × the timeout")
      for name, f, parse in (("TIMEX_DOWNLOAD_MAX_BYTES", "download_max_bytes", int),
                             ("TIMEX_DOWNLOAD_TIMEOUT_S", "download_timeout_s", float))),
    Var("TIMEX_PREDICTOR_CONCURRENCY", "predictor_concurrency", int,
        "units a predictor runs at once (one worker process each)", shown="number of cores"),
    Var("TIMEX_UNIT_MEMORY_MB", "unit_memory_mb", int,
        "memory cap of one unit (a predictor's unit, a live fit or refit): address space of its worker process "
        "(and of each process it starts); over it "
        "the unit fails and its worker is replaced"),
    Var("TIMEX_UNIT_TIMEOUT_S", "unit_timeout_s", float,
        "time limit of one unit; over it the unit fails and its worker is killed and replaced (keep below "
        "`TIMEX_VALIDATOR_DEADLINE_S`)"),
    Var("TIMEX_UNIT_NICE", "unit_nice", _niceness,
        "how much nicer (lower CPU priority, 0–19) a unit's worker runs than its service: fits and refits take the "
        "CPU the per-record work leaves them, and any CPU nothing else wants"),
    Var("TIMEX_FAST_LANE_MAX_WORK", "fast_lane_max_work", int,
        "a request of at most this many points × units (summed over its series; cheap models only, every unit of "
        "a series in one record, no historical predictions, cross-correlation or additional regressors) is "
        "answered by the ingestion: its units run there (a few of closed-form models on its own thread: "
        "timex_stream.runtime.fast_lane.LOOP_UNITS; any others in one worker process of its own at the "
        "ingestion's priority, under `TIMEX_UNIT_MEMORY_MB`) and each series is decided there as the validator "
        "decides it: no predictor or validator hop; 0 turns it off"),
    Var("TIMEX_FAST_LANE_TIMEOUT_S", "fast_lane_timeout_s", float,
        "time limit of a request's units in the ingestion's worker (closed-form units on its thread are bounded "
        "by their count instead); over it (or on any failure there) the request takes the predictors' path"),
    Var("TIMEX_VALIDATOR_DEADLINE_S", "validator_deadline_s", float,
        "a series is decided with what has arrived after this long"),
    Var("TIMEX_VALIDATOR_STALL_S", "validator_stall_s", float,
        "a series with no new unit for this long (and the validator up this long) gets its missing units re-planned "
        "and sent again"),
    Var("TIMEX_VALIDATOR_FORGET_S", "validator_forget_s", float,
        "a decided series' marker is deleted (tombstoned) this long after its answer (the validator's, and the "
        "ingestion's for a request it answered itself); keep it above the deadline"),
    Var("TIMEX_GATEWAY_HOST", "gateway_host", str, "gateway HTTP API"),
    Var("TIMEX_GATEWAY_PORT", "gateway_port", int, "gateway HTTP API"),
    Var("TIMEX_GATEWAY_MAX_REQUESTS", "gateway_max_requests", lambda raw: max(1, int(raw)),
        "requests whose answers one gateway keeps in memory (least recently used evicted, reloaded on demand)"),
    Var("TIMEX_WEBAPP_HOST", "webapp_host", str, "Dash webapp"),
    Var("TIMEX_WEBAPP_PORT", "webapp_port", int, "Dash webapp"),
    Var("TIMEX_GATEWAY_URL", "gateway_url", str, "the gateway the webapp calls",
        derived=lambda v: f"http://{v['gateway_host']}:{v['gateway_port']}",
        shown="`http://$TIMEX_GATEWAY_HOST:$TIMEX_GATEWAY_PORT`"),
    Var("TIMEX_API_TOKENS", "api_tokens", _optional,
        "gateway bearer tokens, `user:token,...` or a file of `user:token` lines",
        note=": no auth (`make up`: `local:<its token>`)"),
    Var("TIMEX_API_KAFKA_USERS", "api_kafka_users", _names,
        "gateway users who also see requests sent straight to Kafka (no owner)", note=" (`make up`: `local`)"),
    Var("TIMEX_API_TOKEN", "api_token", _optional, "the token the webapp sends to the gateway",
        note=": the webapp asks its user (`make up`: its token)"),
    Var("TIMEX_RATE_LIMIT_PER_S", "rate_limit_per_s", float,
        "submissions + re-forecasts per user per gateway process (0: no limit)"),
    Var("TIMEX_RATE_LIMIT_BURST", "rate_limit_burst", int,
        "submissions + re-forecasts per user per gateway process (0: no limit)"),
    Var("TIMEX_READ_RATE_LIMIT_PER_S", "read_rate_limit_per_s", float,
        "other `/api` calls per user per gateway process (0: no limit)", note=" (bursts of 2×)"),
    Var("TIMEX_LIVE_MAX_REQUESTS", "live_max_requests", int,
        "live limit: active standing requests in all (a new one past it is refused)"),
    Var("TIMEX_LIVE_MAX_REQUESTS_PER_USER", "live_max_requests_per_user", int,
        "live limit: active standing requests per owner (those sent straight to Kafka count as one owner, "
        "`kafka`)"),
    Var("TIMEX_LIVE_MAX_SERIES", "live_max_series", int,
        "live limit: series per standing request (observations of a further series are refused)"),
    Var("TIMEX_LIVE_MAX_RECORDS_PER_S", "live_max_records_per_s", float,
        "live limit: records a standing request takes from its source topic per second, 0: no limit "
        "(back-pressure: the rest wait on the topic, none is lost; their points fold into fewer revisions)"),
    Var("TIMEX_LIVE_MAX_WINDOW_POINTS", "live_max_window_points", int,
        "live limit: `live_parameters.window_points` at most this (points kept per live series)"),
    Var("TIMEX_WEB_HOST", "web_host", str, "health + metrics server of a stream service"),
    Var("TIMEX_WEB_PORT", "web_port", int, "health + metrics server of a stream service", note=" (free port)"),
    Var("TIMEX_SUPERVISOR_MAX_RESTARTS", "supervisor_max_restarts", int,
        "`make up` starts a service that exits again (backoff 1, 2, 4 … 30 s); one that would be started again "
        "more than `TIMEX_SUPERVISOR_MAX_RESTARTS` times within `TIMEX_SUPERVISOR_WINDOW_S` is a crash loop: the "
        "stack says so in one line and stops"),
    Var("TIMEX_SUPERVISOR_WINDOW_S", "supervisor_window_s", float,
        "`make up` starts a service that exits again (backoff 1, 2, 4 … 30 s); one that would be started again "
        "more than `TIMEX_SUPERVISOR_MAX_RESTARTS` times within `TIMEX_SUPERVISOR_WINDOW_S` is a crash loop: the "
        "stack says so in one line and stops"),
    Var("TIMEX_RESTARTS", "restarts", int, "set by `make up` for a service it started again: how often "
        "(`timex_service_restarts` on the service's `/metrics`)"),
)

# The request limits (read by forecasting.limits.RequestLimits.from_env): what each one bounds.
LIMIT_MEANINGS: dict[str, str] = {
    "TIMEX_MAX_PREDICTION_LAGS": "request limit: `model_parameters.prediction_lags` at most this",
    "TIMEX_MAX_HORIZON_RATIO": "request limit: `prediction_lags` at most this many times each series' length",
    "TIMEX_MAX_TEST_VALUES": "request limit: `model_parameters.test_values` at most this",
    "TIMEX_MAX_SERIES": "request limit: series per request",
    "TIMEX_MAX_POINTS_PER_SERIES": "request limit: points per series (after resampling and selection)",
    "TIMEX_MAX_UNITS_PER_REQUEST": "request limit: units of work (series × models × transformations × training "
                                   "windows)",
    "TIMEX_MAX_RECORD_BYTES": "request limit: the largest Kafka record one series may need (its answer; see Limits)",
}


def shown(value: Any) -> str:
    """A default as the README writes it."""
    if value is None:
        return "unset"
    if value == ():
        return "empty"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int) and value >= 1 << 20 and value % (1 << 20) == 0:
        return f"{value >> 20} MiB"
    return str(value)


def documented() -> list[tuple[str, str, str]]:
    """(variable, default as the README shows it, meaning) of every variable, Settings' and the request limits',
    in the README's order (the limits after the downloads)."""
    defaults = {f.name: f.default for f in fields(Settings) if f.default is not MISSING}
    rows = [(v.name, (v.shown or shown(defaults[v.field])) + v.note, v.meaning) for v in VARIABLES]
    limits = {f.name: f.default for f in fields(RequestLimits)}
    limit_rows = [(var, shown(limits[name]), LIMIT_MEANINGS[var]) for name, var in LIMIT_VARS.items()]
    after = next(i for i, (name, _, _) in enumerate(rows) if name == "TIMEX_DOWNLOAD_TIMEOUT_S") + 1
    return rows[:after] + limit_rows + rows[after:]


def readme_table() -> list[str]:
    """The README's table: one line per run of variables with the same meaning (and their defaults joined,
    or said once when they are the same)."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows = documented()
    i = 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1][2] == rows[i][2]:
            j += 1
        group = rows[i:j + 1]
        names = ", ".join(f"`{name}`" for name, _, _ in group)
        defaults = [default for _, default, _ in group]
        default = defaults[0] if len(set(defaults)) == 1 else ", ".join(defaults)
        lines.append(f"| {names} | {default} | {rows[i][2]} |")
        i = j + 1
    return lines


if __name__ == "__main__":
    print("\n".join(readme_table()))
