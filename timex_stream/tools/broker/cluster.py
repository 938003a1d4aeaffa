"""A local KRaft cluster of N nodes, each an `EmbeddedKafka` (combined controller and broker) on loopback: one
static controller quorum of all N, storage formatted with one cluster id, separate ports and data dirs, the
same jars. Per-node stop/kill/start/pause/resume for the fault tests.
"""

from __future__ import annotations

import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

from timex_stream.runtime.kafka import admin, collect_clients
from timex_stream.runtime.ports import free_port
from timex_stream.tools.broker.embedded import EmbeddedKafka, Quorum, _cluster_id

PORT_STRIDE = 2  # node i listens on port + 2i and controller_port + 2i: 9092, 9094, ... and 9093, 9095, ...
CLUSTER_ID_FILE = "cluster-id"
# A node's controller quorum transitions (INFO of org.apache.kafka.raft.QuorumState, log4j2.properties): the new
# state's epoch comes first on the line, and a follower's names its leader.
_BECAME_LEADER = re.compile(r"Completed transition to Leader\(.*?epoch=(\d+)")
_BECAME_FOLLOWER = re.compile(r"Completed transition to FollowerState\(.*?epoch=(\d+), leader=(\d+)")


def cluster_ports(port: int, controller_port: int, n: int) -> list[tuple[int, int]]:
    """The fixed (broker, controller) ports of the n nodes of a cluster kept on disk; raises if two coincide."""
    pairs = [(port + PORT_STRIDE * i, controller_port + PORT_STRIDE * i) for i in range(n)]
    flat = [p for pair in pairs for p in pair]
    if len(set(flat)) != len(flat):
        raise ValueError(f"ports of a {n}-broker cluster collide ({flat}): set TIMEX_KAFKA_CONTROLLER_PORT to "
                         f"TIMEX_KAFKA_PORT + 1 (or far from it)")
    return pairs


class EmbeddedCluster:
    """N KRaft nodes. `data_dir=None`: a temp dir and free ports (tests); a given dir keeps the cluster across
    restarts, on fixed ports from `port`/`controller_port` (see `cluster_ports`)."""

    def __init__(self, cache_dir: Path, n: int = 3, data_dir: Path | None = None, port: int | None = None,
                 controller_port: int | None = None, heap: str = "384m") -> None:
        if n < 1:
            raise ValueError("a cluster needs at least one broker")
        self._tmp = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="timex-kafka-cluster-")) if data_dir is None else data_dir
        if data_dir is None and port is None:
            pairs = [(free_port(), free_port()) for _ in range(n)]
        else:
            pairs = cluster_ports(port or 9092, controller_port or (port or 9092) + 1, n)
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(pairs))
        cluster_id = self._cluster_id()
        self.nodes = [EmbeddedKafka(cache_dir, self.data_dir / f"node-{i + 1}", port=p, controller_port=c,
                                    heap=heap, quorum=Quorum(i + 1, voters, cluster_id, n))
                      for i, (p, c) in enumerate(pairs)]

    def _cluster_id(self) -> str:
        # Kept beside the nodes: a node formatted later (its dir lost) must join the same cluster.
        path = self.data_dir / CLUSTER_ID_FILE
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cluster_id = _cluster_id()
        path.write_text(cluster_id + "\n")
        return cluster_id

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

    @property
    def log_file(self) -> Path:
        """Where the node logs are (one `node-N/broker.log` each)."""
        return self.data_dir / "node-*" / "broker.log"

    def node(self, node_id: int) -> EmbeddedKafka:
        return self.nodes[node_id - 1]

    def active_controller(self) -> int | None:
        """The node leading the controller quorum at the latest epoch any node's log reports (None: none yet)."""
        best: tuple[int, int] | None = None  # (epoch, leader)
        for node in self.nodes:
            try:
                text = node.log_file.read_text(errors="replace")
            except FileNotFoundError:
                continue
            for line in text.splitlines():
                if m := _BECAME_LEADER.search(line):
                    seen = (int(m.group(1)), node.node_id)
                elif m := _BECAME_FOLLOWER.search(line):
                    seen = (int(m.group(1)), int(m.group(2)))
                else:
                    continue
                best = seen if best is None or seen[0] > best[0] else best
        return None if best is None else best[1]

    def start(self, timeout: float = 120.0) -> str:
        """Start every node, wait until each says it started and the cluster's metadata lists all N brokers."""
        try:
            for node in self.nodes:
                node.launch()
            deadline = time.monotonic() + timeout
            for node in self.nodes:
                node.wait_started(max(deadline - time.monotonic(), 1.0))
            self.wait_registered(len(self.nodes), max(deadline - time.monotonic(), 1.0))
        except BaseException:
            self.stop()
            raise
        return self.bootstrap_servers

    def wait_registered(self, n: int, timeout: float = 60.0) -> None:
        """Wait until the metadata lists `n` live brokers (a restarted node counts once it is unfenced)."""
        deadline = time.monotonic() + timeout
        seen, error = 0, ""
        while time.monotonic() < deadline:
            try:  # a new client each time: one made while a node was down kept failing (_TRANSPORT) once it was up
                seen, error = len(admin(self.bootstrap_servers).list_topics(timeout=5).brokers), ""
            except Exception as exc:  # noqa: BLE001 - a node still starting answers nothing yet
                seen, error = 0, f" (the metadata request: {exc})"
            if seen == n:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{seen} of {n} brokers registered after {timeout:.0f} s{error}; logs: {self.log_file}")

    def stop(self) -> None:
        """Stop every node (controlled shutdown); a temp data dir goes with them. All are told at once: one by
        one, the last ones would wait for a controller quorum that has already left."""
        collect_clients()
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGCONT)  # a paused node must run to shut down
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()
        if self._tmp:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
