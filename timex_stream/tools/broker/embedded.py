"""Start and stop a real Kafka broker (KRaft, broker+controller in one JVM) without Docker.

The jars come from Maven Central through `pom.xml` beside this file (`mvn dependency:copy-dependencies`),
once, into a cache folder outside the repo. The JVM gets PR_SET_PDEATHSIG so it dies with its Python
parent even when that parent is killed: no orphan broker after an interrupted test run.
"""

from __future__ import annotations

import base64
import logging
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from timex_stream.runtime.kafka import collect_clients
from timex_stream.runtime.ports import free_port
from timex_stream.runtime.processes import die_with_parent
from timex_stream.runtime.replication import replication_for

KAFKA_VERSION = "4.3.1"
_HERE = Path(__file__).resolve().parent
_STARTED = "Kafka Server started"
log = logging.getLogger(__name__)


def ensure_jars(cache_dir: Path) -> Path:
    """Fetch the broker jars into `cache_dir/kafka-<version>` unless they are there; returns that folder."""
    jars = cache_dir / f"kafka-{KAFKA_VERSION}"
    marker = jars / ".complete"
    if marker.exists():
        return jars
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is needed once to fetch the Kafka jars; "
                           "install it or set KAFKA_BOOTSTRAP_SERVERS")
    jars.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-q", "-B", "-f", str(_HERE / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={jars}", "-DincludeScope=runtime"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"fetching Kafka jars failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    marker.write_text(KAFKA_VERSION)
    return jars


@dataclass(frozen=True)
class Quorum:
    """How a node of a cluster finds the others: its id, the static controller voters (`1@host:port,...`),
    the cluster id every node's storage is formatted with, and the cluster size (its replication defaults)."""

    node_id: int
    voters: str
    cluster_id: str
    brokers: int


class EmbeddedKafka:
    """A KRaft node (broker and controller in one JVM) on loopback: alone (`quorum=None`, as always) or one node
    of an `EmbeddedCluster`.

    `data_dir=None` uses a fresh temp dir (tests); a given dir keeps topics across restarts (`make up`),
    which is why the ports are then fixed: the KRaft voter set records the controller's address.
    """

    def __init__(self, cache_dir: Path, data_dir: Path | None = None, port: int | None = None,
                 controller_port: int | None = None, heap: str = "768m", quorum: Quorum | None = None) -> None:
        self.cache_dir = cache_dir
        self._tmp = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="timex-kafka-")) if data_dir is None else data_dir
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.heap = heap
        self.quorum = quorum
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def node_id(self) -> int:
        return self.quorum.node_id if self.quorum else 1

    def _write_config(self) -> Path:
        logs = self.data_dir / "kraft-logs"
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "log.dirs": str(logs),
            "num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            # A single local consumer should not wait 3 s for a rebalance that never gets more members.
            "group.initial.rebalance.delay.ms": "0",
            # One network thread and two request handlers (defaults 3 and 8) for a broker on a machine of a few
            # cores: the same requests take turns on fewer threads (fewer hand-offs between them).
            "num.network.threads": "1",
            "num.io.threads": "2",
            # A lone controller need not append a no-op record (and flush its metadata log) every 500 ms to show
            # its quorum it is alive: 7.6 of the idle broker's 12.3 CPU ms a second. A cluster keeps them.
            "metadata.max.idle.interval.ms": "0",
        }
        if self.quorum is not None:  # one node of a cluster: static voters, replicated internal topics
            del props["controller.quorum.bootstrap.servers"]
            del props["metadata.max.idle.interval.ms"]
            rep = replication_for(self.quorum.brokers)
            props.update({
                "controller.quorum.voters": self.quorum.voters,
                "default.replication.factor": str(rep.factor),
                "min.insync.replicas": str(rep.min_insync),
                "offsets.topic.replication.factor": str(rep.factor),
                "transaction.state.log.replication.factor": str(rep.factor),
                "transaction.state.log.min.isr": str(rep.min_insync),
                "share.coordinator.state.topic.replication.factor": str(rep.factor),
                # A killed or silent node's partitions get new leaders within seconds, not after the 9 s default.
                # A silent active controller is replaced first (2.5–3.7 s measured) and the new one counts the whole
                # session again: the answers stopped for that plus the session (with 4 s, 6.2–7.8 s for a paused
                # controller; with 6 s, a killed one left partitions without an answer for 10.3 s). 3 s is 6
                # heartbeats: a broker is fenced only if all stall 2.5 s, and a false fencing costs leader moves and
                # a catch-up, not answers.
                "broker.session.timeout.ms": "3000",
                "broker.heartbeat.interval.ms": "500",
            })
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _java(self, jars: Path, main: str, *args: str) -> list[str]:
        # TieredStopAtLevel=1 (client JIT only): the server JIT compiled for the first minutes of a broker's life,
        # 6.8 of its 13 CPU seconds in a 500-series bench on 2 cores, taken from the fits; a local broker
        # never runs long enough to gain it back (its request threads took 3.9 s either way; measured again for a
        # trivial request: the server JIT still took 8-10 ms of CPU a request after 750 requests).
        # CompileThresholdScaling=0.1: compile a method after a tenth of the calls: a fresh broker interpreted its
        # request path for hundreds of requests (8 ms of CPU a trivial request over its first 100, 3.5 later;
        # 5.5 with this), for 0.1 s and 0.3 CPU-s more at its start.
        # UseSerialGC: G1's concurrent and parallel GC threads and its write barriers cost the broker's small heap
        # more than they save (1.0 -> 0.3 ms of GC threads a trivial request); its young pauses stay short.
        return ["java", f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                "-XX:TieredStopAtLevel=1", "-XX:CompileThresholdScaling=0.1",
                f"-Dlog4j2.configurationFile={_HERE / 'log4j2.properties'}",
                "-cp", f"{jars}/*", main, *args]

    def start(self, timeout: float = 90.0) -> str:
        """Format storage if needed, start the JVM, wait for "Kafka Server started"; returns bootstrap."""
        self.launch()
        self.wait_started(timeout)
        return self.bootstrap_servers

    def launch(self) -> None:
        """Format storage if needed and start the JVM; do not wait (the nodes of a cluster start together: none
        finishes starting before a majority of the controllers runs)."""
        if shutil.which("java") is None:
            raise RuntimeError("Java 17+ is needed for the embedded Kafka broker (or set KAFKA_BOOTSTRAP_SERVERS)")
        jars = ensure_jars(self.cache_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.data_dir / "kraft-logs" / "meta.properties").exists():
            # `--cluster-id=ID`, not `-t ID`: an id may start with "-" and would read as an option. A node of a
            # cluster has its voters in its config (static quorum); a lone node is its own (--standalone).
            how = ["--standalone"] if self.quorum is None else []
            cluster_id = self.quorum.cluster_id if self.quorum else _cluster_id()
            fmt = subprocess.run(self._java(jars, "kafka.tools.StorageTool", "format", *how,
                                            f"--cluster-id={cluster_id}", "-c", str(config)),
                                 capture_output=True, text=True)
            if fmt.returncode != 0:
                raise RuntimeError(f"formatting Kafka storage failed: {fmt.stdout[-1500:]}{fmt.stderr[-1500:]}")
        log_fh = open(self.log_file, "ab")  # noqa: SIM115 - the JVM keeps writing after we return
        self._log_offset = self.log_file.stat().st_size
        self.proc = subprocess.Popen(self._java(jars, "kafka.Kafka", str(config)), stdout=log_fh,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        log_fh.close()

    def wait_started(self, timeout: float = 90.0) -> None:
        """Wait for "Kafka Server started" in this launch's log; stop the node and raise with the log tail if not."""
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_file, "rb") as fh:
                fh.seek(self._log_offset)
                if _STARTED.encode() in fh.read():
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = self.log_file.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"Kafka broker {self.node_id} did not start within {timeout:.0f} s; log tail:\n{tail}")

    def kill(self) -> None:
        """A crash: SIGKILL, no controlled shutdown (`start` again recovers from the same data dir)."""
        self.stop(sig=signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: the process stays but answers nothing (to its clients and peers, like a network partition)."""
        assert self.proc is not None and self.proc.poll() is None, "not running"
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "not running"
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 20.0, sig: signal.Signals = signal.SIGTERM) -> None:
        """SIGTERM (controlled shutdown; `sig` another signal, e.g. SIGKILL for a crash), then SIGKILL if it
        lingers; removes a temp data dir. A given data dir is kept: `start` again resumes from it."""
        collect_clients()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig != signal.SIGKILL:
                self.proc.send_signal(signal.SIGCONT)  # a paused JVM must run to shut down
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._tmp:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_id() -> str:
    # Kafka wants a base64url-encoded 16-byte UUID (what `kafka-storage random-uuid` prints).
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
