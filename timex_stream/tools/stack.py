"""The local stack behind `make up`: embedded broker (unless KAFKA_BOOTSTRAP_SERVERS), topics, every
service as a child process; prints `ready:` once each accepts work (then the gateway's API token);
a service that exits is started again after a backoff (`timex_stream.tools.supervise`), and the stack stops
only on Ctrl-C/SIGTERM or a crash loop. Before it starts anything it checks that every fixed port it needs is free
(`taken_ports`): a port held by another server (or an old gateway) fails in one line, not after a long wait
or with a `ready:` for the old one."""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from timex_stream.runtime.kafka import admin, ensure_topics, failure
from timex_stream.runtime.ports import free_port
from timex_stream.runtime.settings import Settings
from timex_stream.tools.broker import EmbeddedCluster, EmbeddedKafka
from timex_stream.tools.broker.cluster import cluster_ports
from timex_stream.tools.supervise import Restarts


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str  # imported by `timex-stream service NAME`
    group: str | None = None  # Kafka consumer group: ready once it is stable with members
    health_url: str | None = None  # HTTP services: ready once this answers 200

    def available(self) -> bool:
        return importlib.util.find_spec(self.module.split(".")[0]) is not None and \
            importlib.util.find_spec(self.module) is not None


def service_specs(settings: Settings) -> list[ServiceSpec]:
    return [
        ServiceSpec("ingestion", "ingestion.service", group="timex-ingestion"),
        ServiceSpec("predictor", "predictor.service", group="timex-predictor"),
        ServiceSpec("validator", "validator.service", group="timex-validator"),
        ServiceSpec("live", "live.service", group="timex-live"),
        ServiceSpec("gateway", "gateway.service",
                    health_url=f"http://{settings.gateway_host}:{settings.gateway_port}/health"),
        ServiceSpec("webapp", "webapp.service",
                    health_url=f"http://{settings.webapp_host}:{settings.webapp_port}/health"),
    ]


API_TOKEN_FILE = "api-token"
LOCAL_USER = "local"


def local_api_token(data_dir: Path) -> tuple[str, Path]:
    """The gateway token of `make up` when TIMEX_API_TOKENS is unset: made once, kept in
    `data_dir/api-token` (mode 0600, only its owner reads it) and reused by every later `make up`."""
    path = data_dir / API_TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if len(token) < 16 or any(c.isspace() for c in token):  # missing or spoilt: make a new one
        token = secrets.token_urlsafe(32)
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
    os.chmod(path, 0o600)  # also tightens a file made by hand or under another umask
    return token, path


def wait_for_members(bootstrap: str, group: str, topic: str, n: int, timeout: float = 120.0) -> None:
    """Wait until `n` members of consumer group `group` have partitions of `topic` assigned."""
    client = admin(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        future = client.describe_consumer_groups([group], request_timeout=DESCRIBE_GROUP_S)[group]
        desc = future.result() if failure(future) is None else None  # not raised: see `failure`
        members = desc.members if desc is not None else []
        if sum(any(tp.topic == topic for tp in m.assignment.topic_partitions) for m in members) == n:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group}: not {n} members with {topic} partitions after {timeout:.0f} s")
        time.sleep(0.5)


# describe_consumer_groups whose request times out while the group's coordinator is being looked up can abort
# the whole process (librdkafka issue #4605, still open: "rd_kafka_enq_once_del_source_return: Assertion").
# It did, twice, while a test's services started on a 3-broker cluster with the machine at load 25; a generous
# timeout keeps that path rare (the call returns as soon as the broker answers).
DESCRIBE_GROUP_S = 30


def _group_ready(client: AdminClient, group: str) -> bool:
    future = client.describe_consumer_groups([group], request_timeout=DESCRIBE_GROUP_S)[group]
    if failure(future) is not None:  # not raised: see `failure`
        return False
    desc = future.result()
    return desc.state == ConsumerGroupState.STABLE and any(m.assignment.topic_partitions for m in desc.members)


def _http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own loopback service
            return resp.status == 200
    except OSError:
        return False


@dataclass(frozen=True)
class FixedPort:
    owner: str  # what listens there, e.g. "gateway", "embedded Kafka broker"
    host: str
    port: int
    variable: str  # the setting that moves it


def fixed_ports(settings: Settings, specs: list[ServiceSpec], brokers: int = 1) -> list[FixedPort]:
    """The ports a stack of `specs` binds at fixed numbers (the stream services' health ports are picked free)."""
    ports = []
    if not settings.bootstrap_servers:  # the embedded broker: KRaft records its ports, so they are fixed
        pairs = [(settings.kafka_port, settings.kafka_controller_port)] if brokers == 1 else \
            cluster_ports(settings.kafka_port, settings.kafka_controller_port, brokers)
        for i, (port, controller_port) in enumerate(pairs):
            which = "" if brokers == 1 else f" {i + 1}"
            ports += [FixedPort(f"embedded Kafka broker{which}", "127.0.0.1", port, "TIMEX_KAFKA_PORT"),
                      FixedPort(f"embedded Kafka controller{which}", "127.0.0.1", controller_port,
                                "TIMEX_KAFKA_CONTROLLER_PORT")]
    names = {s.name for s in specs}
    if "gateway" in names:
        ports.append(FixedPort("gateway", settings.gateway_host, settings.gateway_port, "TIMEX_GATEWAY_PORT"))
    if "webapp" in names:
        ports.append(FixedPort("webapp", settings.webapp_host, settings.webapp_port, "TIMEX_WEBAPP_PORT"))
    return ports


def _port_taken(host: str, port: int) -> bool:
    # Bind as the servers do (SO_REUSEADDR: a socket left in TIME_WAIT does not count, a listening one does).
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def taken_ports(ports: list[FixedPort]) -> str | None:
    """None when every port is free, else one line naming each taken port and the variable that moves it."""
    taken = [p for p in ports if _port_taken(p.host, p.port)]
    if not taken:
        return None
    return "cannot start: " + "; ".join(
        f"port {p.port} on {p.host} (the {p.owner}) is in use: stop what listens there or set {p.variable}"
        for p in taken)


class PortTaken(RuntimeError):
    """A fixed port of the stack is in use (raised before anything was started)."""


def is_ready(spec: ServiceSpec, client: AdminClient) -> bool:
    if spec.group is not None:
        return _group_ready(client, spec.group)
    return spec.health_url is not None and _http_ready(spec.health_url)


class Stack:
    def __init__(self, settings: Settings, only: list[str] | None = None, brokers: int = 1) -> None:
        self.settings = settings
        self.brokers = brokers  # of the embedded broker: one, or a local cluster of this many
        self.broker: EmbeddedKafka | EmbeddedCluster | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.specs = [s for s in service_specs(settings)
                      if s.available() and (only is None or s.name in only)]
        self.log_dir = settings.data_dir / "logs"
        self.bootstrap = settings.bootstrap_servers or ""
        self.web_ports: dict[str, int] = {}
        self.launched: dict[str, tuple[str, dict[str, str]]] = {}  # instance → (service, env): to restart it
        self.api_token: str | None = None  # made by start() when TIMEX_API_TOKENS is unset
        self.api_token_file: Path | None = None

    def check_ports(self) -> None:
        """Raise PortTaken (one line) when a fixed port this stack needs is in use; starts nothing."""
        if problem := taken_ports(fixed_ports(self.settings, self.specs, self.brokers)):
            raise PortTaken(problem)

    def start_broker(self) -> str:
        if self.settings.bootstrap_servers:
            return self.settings.bootstrap_servers
        if self.brokers > 1:  # its own data dir: a one-broker cluster's data does not turn into three
            self.broker = EmbeddedCluster(self.settings.cache_dir, self.brokers, self.settings.data_dir /
                                          f"kafka-{self.brokers}", port=self.settings.kafka_port,
                                          controller_port=self.settings.kafka_controller_port)
            return self.broker.start()
        self.broker = EmbeddedKafka(self.settings.cache_dir, self.settings.data_dir / "kafka",
                                    port=self.settings.kafka_port, controller_port=self.settings.kafka_controller_port)
        return self.broker.start()

    def start(self, timeout: float = 180.0) -> str:
        t0 = time.monotonic()
        self.check_ports()  # before anything starts: nothing to stop when a port is taken
        self.bootstrap = self.start_broker()
        where = f"embedded, log {self.broker.log_file}" if self.broker else "external"
        print(f"kafka: {self.bootstrap} ({where})", flush=True)
        ensure_topics(self.bootstrap)
        if not self.settings.api_tokens and any(s.name in ("gateway", "webapp") for s in self.specs):
            self.api_token, self.api_token_file = local_api_token(self.settings.data_dir)
        for spec in self.specs:
            proc = self.launch(spec.name, **self.auth_env(spec.name))
            health = spec.health_url or f"http://127.0.0.1:{self.web_ports[spec.name]}/health"
            print(f"{spec.name}: pid {proc.pid}, health {health}, log {self.log_dir / (spec.name + '.log')}",
                  flush=True)
        self.wait_ready(timeout)
        names = ", ".join(s.name for s in self.specs) or "no services yet"
        urls = "".join(f", {s.name} {s.health_url.rsplit('/', 1)[0]}" for s in self.specs if s.health_url)
        return f"ready: kafka {self.bootstrap}; {names}{urls} (in {time.monotonic() - t0:.1f} s)"

    def auth_env(self, name: str) -> dict[str, str]:
        """The local token for the gateway (its only user, `local`) and for the webapp (sent on every call)."""
        if self.api_token is None:
            return {}
        if name == "gateway":
            # The local user also sees what `timex-stream submit` sent straight to Kafka (no owner).
            return {"TIMEX_API_TOKENS": f"{LOCAL_USER}:{self.api_token}", "TIMEX_API_KAFKA_USERS": LOCAL_USER}
        return {"TIMEX_API_TOKEN": self.api_token} if name == "webapp" else {}

    def token_line(self) -> str | None:
        """Printed right after `ready:` (stdout of `make up`, not a log)."""
        if self.api_token is not None:
            return f"token: {self.api_token} (also in {self.api_token_file}; send `Authorization: Bearer <token>`)"
        if self.settings.api_tokens:
            return "token: the gateway takes the tokens of TIMEX_API_TOKENS"
        return None

    def launch(self, name: str, instance: str | None = None, **env: str) -> subprocess.Popen[bytes]:
        """Start one service process (`instance` names a second copy, e.g. "predictor-2")."""
        instance = instance or name
        self.launched[instance] = (name, dict(env))
        if name == "gateway":  # the port this stack's readiness check asks, not whatever the environment says
            env.setdefault("TIMEX_GATEWAY_PORT", str(self.settings.gateway_port))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if name in ("ingestion", "predictor", "validator", "live"):  # their web server: health + metrics
            env.setdefault("TIMEX_WEB_PORT", str(free_port()))
            self.web_ports[instance] = int(env["TIMEX_WEB_PORT"])
        with open(self.log_dir / f"{instance}.log", "ab") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "timex_stream.tools.cli", "service", name],
                                    stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                                         "TIMEX_DATA_DIR": str(self.settings.data_dir), **env})
        self.children[instance] = proc
        return proc

    def restart(self, instance: str, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Stop one service process with `sig`, wait for it to exit, start it again as it was launched
        (same env; a fresh health port); → the exit code of the stopped process."""
        process = self.children[instance]
        process.send_signal(sig)
        code = process.wait(timeout)
        name, env = self.launched[instance]
        self.launch(name, instance, **env)
        return code

    def relaunch(self, instance: str, restarts: int) -> subprocess.Popen[bytes]:
        """Start an exited service process again as it was launched, telling it how often (TIMEX_RESTARTS)."""
        name, env = self.launched[instance]
        return self.launch(name, instance, **{**env, "TIMEX_RESTARTS": str(restarts)})

    def wait_ready(self, timeout: float = 180.0) -> None:
        pending = list(self.specs)
        client = admin(self.bootstrap)
        deadline = time.monotonic() + timeout
        while pending:
            for name, proc in self.children.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_dir / (name + '.log')}")
            pending = [s for s in pending if not is_ready(s, client)]
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {', '.join(s.name for s in pending)}")
            if pending:
                time.sleep(0.5)

    def stop(self) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.children.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.children.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def run_up(settings: Settings, brokers: int = 1) -> int:
    stack = Stack(settings, brokers=brokers)
    try:
        stack.check_ports()
    except PortTaken as exc:
        print(exc, file=sys.stderr, flush=True)
        return 1
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        print(stack.start(), flush=True)
        if line := stack.token_line():
            print(line, flush=True)
        return supervise(stack, Restarts(settings.supervisor_max_restarts, settings.supervisor_window_s))
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as exc:  # a service exited or never got ready: one line, then stop all
        print(exc, file=sys.stderr, flush=True)
        return 1
    finally:
        print("stopping...", flush=True)
        stack.stop()
        print("stopped", flush=True)


def supervise(stack: Stack, restarts: Restarts, poll_s: float = 0.2) -> int:
    """Until Ctrl-C/SIGTERM (KeyboardInterrupt): start every service that exits again after its backoff;
    → 1 on a crash loop, said in one line."""
    due: dict[str, float] = {}  # instance → when it starts again
    while True:
        now = time.monotonic()
        for name, proc in list(stack.children.items()):
            if name in due or proc.poll() is None:
                continue
            delay = restarts.after_exit(name, now)
            if delay is None:
                print(restarts.crash_loop(name), file=sys.stderr, flush=True)
                return 1
            print(f"{name} exited with {proc.returncode}; starting it again in {delay:g} s "
                  f"(restart {restarts.total[name]}; log {stack.log_dir / (name + '.log')})",
                  file=sys.stderr, flush=True)
            due[name] = now + delay
        for name, at in list(due.items()):
            if now >= at:
                del due[name]
                proc = stack.relaunch(name, restarts.total[name])
                print(f"{name}: pid {proc.pid} (restart {restarts.total[name]})", flush=True)
        time.sleep(poll_s)
