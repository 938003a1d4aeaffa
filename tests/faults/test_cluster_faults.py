"""The fault table on a 3-broker cluster, under load: the stream services on one module-scoped `kafka_cluster`
(replication factor 3, min ISR 2), and for each scenario a load of small requests in flight while a fault hits
the cluster (or the validator's consumer group). Every request is answered exactly once with the fault-free
answer; where the issue says so, no answer gap is longer than MAX_GAP_S; after each scenario every node runs
again and every partition has its 3 replicas in sync (the killed or paused broker rejoined).

A thread reads the answers as they come while the fault runs (so a gap is measured when it happens).
The load is the one-broker fault tests' 112 requests, each light (one model, one training window: 2 units a series,
not 6), so that the scenarios on three JVMs fit the CI's time (README "Faults on a cluster").
"""

from __future__ import annotations

import dataclasses
import re
import signal
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2
from confluent_kafka.admin import NewTopic

from schemas import decode_as
from schemas.keys import series_key
from schemas.topics import BEST_MODELS, CONFIGS, DATASETS, FORECAST_HISTORY, FORECASTS, PREDICTIONS
from tests.plugins.live_stream import (
    MIN_POINTS,
    SERIES,
    TIMEOUT,
    Seen,
    assert_undisturbed,
    has_revision,
    produce_stream,
    stream_config,
)
from tests.plugins.waiting import wait_until
from timex_stream.runtime.history import read_range
from timex_stream.runtime.kafka import admin, producer
from timex_stream.runtime.produce_watch import REFUSED_AFTER_S
from timex_stream.runtime.records import now_ms
from timex_stream.runtime.request_view import RequestView
from timex_stream.runtime.settings import Settings
from timex_stream.runtime.submit import new_request_id, submit
from timex_stream.tools.broker import EmbeddedCluster
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack, wait_for_members

from .load import Tally, config, count_duplicates, differences, reference, request_columns, wide_frame

pytestmark = pytest.mark.slow
SERVICES = ["ingestion", "predictor", "validator", "live"]
N_REQUESTS = 112  # the one-broker fault tests' load, light (load.config): the same units as 36 of theirs
ANSWER_S = 180  # every request of a scenario answered within this after the fault began
MAX_GAP_S = 10.0  # the bound on the longest time without an answer once the fault hit
DOWN_S = 10  # how long a killed broker stays down before it is started again
PAUSE_S = 30  # the network partition: a broker stopped (SIGSTOP) this long
REFUSED_S = 20  # two brokers down this long: writes refused, the services say so and wait


@dataclass
class ClusterStack:
    cluster: EmbeddedCluster
    stack: Stack
    url: str
    expected: dict[str, dict]
    rows: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def on_cluster(kafka_cluster: EmbeddedCluster, csv_server: tuple[str, Path],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStack]:
    base, root = csv_server
    columns = [c for request in request_columns()[:N_REQUESTS] for c in request]
    wide_frame(len(columns)).to_csv(root / "cluster-wide.csv", index=False)
    url = f"{base}/cluster-wide.csv"
    expected = reference(url, (root / "cluster-wide.csv").read_bytes(), columns, light=True)
    data_dir = tmp_path_factory.mktemp("cluster-stack")
    settings = dataclasses.replace(Settings.from_env(), bootstrap_servers=kafka_cluster.bootstrap_servers,
                                   data_dir=data_dir)
    stack = Stack(settings, only=SERVICES)
    cs = None
    with pytest.MonkeyPatch.context() as env:  # what the service processes inherit
        env.setenv("TIMEX_URL_ALLOWLIST", "127.0.0.0/8")
        env.setenv("TIMEX_VALIDATOR_STALL_S", str(Settings().validator_stall_s))
        try:
            stack.start()
            cs = ClusterStack(kafka_cluster, stack, url, expected)
            yield cs
        finally:
            stack.stop()
            for log in sorted((data_dir / "logs").glob("*.log")):  # shown by pytest when a test failed
                text = log.read_text(errors="replace")
                # The tail holds the last seconds only: a stall's start (a table recovery, a rebalance, an offset
                # reset that failed) is minutes earlier, so those lines are shown too (not the hundreds of
                # NodeNotReadyError lines a down broker causes).
                history = [line for line in text.splitlines()
                           if any(k in line for k in HISTORY) and "NodeNotReadyError" not in line]
                print(f"--- {log.name} (recovery, group, fetcher)\n" + "\n".join(history[-60:]))
                print(f"--- {log.name} (tail)\n{text[-3000:]}")
            if cs is not None:
                print("\n".join(["faults on a 3-broker cluster:", HEADER, *cs.rows]))


HEADER = f"{Tally.HEADER}  {'longest gap':>11}"
HISTORY = ('"faust.tables.recovery"', '"aiokafka.consumer.group_coordinator"', '"aiokafka.consumer.fetcher"')


def test_the_services_internal_topics_are_replicated_3_times(on_cluster: ClusterStack) -> None:
    topics = admin(on_cluster.cluster.bootstrap_servers).list_topics(timeout=10).topics
    internal = {name: t for name, t in topics.items()
                if name.startswith(("timex-validator-", "timex-predictor-", "timex-ingestion-"))}
    assert any(name.endswith("-changelog") for name in internal), sorted(internal)  # the validator's table
    for name, topic in internal.items():
        assert {len(p.replicas) for p in topic.partitions.values()} == {3}, name


# --- the cluster's state ---------------------------------------------------------------------------------------

def _leaders(cluster: EmbeddedCluster, topic: str) -> list[int]:
    meta = admin(cluster.bootstrap_servers).list_topics(topic, timeout=10).topics[topic]
    return [p.leader for p in meta.partitions.values()]


def leader_of_configs_and_datasets(cluster: EmbeddedCluster) -> int:
    """The broker leading the most partitions of `configs` and `datasets`, at least one of each."""
    configs, datasets = _leaders(cluster, CONFIGS.name), _leaders(cluster, DATASETS.name)
    both = [n for n in set(configs) & set(datasets) if n > 0]
    assert both, f"no broker leads partitions of both: configs {configs}, datasets {datasets}"
    return max(both, key=lambda n: configs.count(n) + datasets.count(n))


def _out_of_sync(cluster: EmbeddedCluster) -> list[str]:
    """Partitions (of every topic, internal ones included) without all the nodes in their ISR."""
    everyone = {n.node_id for n in cluster.nodes}
    topics = admin(cluster.bootstrap_servers).list_topics(timeout=10).topics
    return [f"{name}[{p.id}] isr {sorted(p.isrs)}" for name, t in topics.items() for p in t.partitions.values()
            if set(p.isrs) != everyone]


def wait_all_in_sync(cluster: EmbeddedCluster, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    try:
        cluster.wait_registered(len(cluster.nodes), timeout)
        while lagging := _out_of_sync(cluster):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not in sync after {timeout:.0f} s: {lagging[:10]}")
            time.sleep(0.5)
    except TimeoutError as exc:  # the nodes' logs go with the cluster's temp dir: say what they said
        tails = "".join(f"\n--- node {n.node_id} (tail)\n{n.log_file.read_text(errors='replace')[-2500:]}"
                        for n in cluster.nodes)
        raise TimeoutError(f"{exc}{tails}") from None


def restore(cluster: EmbeddedCluster) -> None:
    """Every node running again (a paused one resumed) and in every ISR: the next scenario starts healthy."""
    for node in cluster.nodes:
        if node.proc is None:
            node.start()
        else:
            node.proc.send_signal(signal.SIGCONT)
    wait_all_in_sync(cluster)


# --- one scenario ----------------------------------------------------------------------------------------------

def run_scenario(cs: ClusterStack, name: str, fault: Callable[[], str], max_gap: float | None = MAX_GAP_S,
                 when: Callable[[dict[str, RequestView]], bool] = lambda vs: sum(
                     v.units_done for v in vs.values()) >= 10) -> int:
    """Send the load, wait until `when`, run `fault` (it says what it did) while the answers are
    read as they come (in a thread); judge every answer, count duplicates on best-models and the longest time without an
    answer (any progress or best-model record) from the fault on. → that longest gap (s)."""
    bootstrap = cs.cluster.bootstrap_servers
    tally, t0, since = Tally(name), time.monotonic(), now_ms() - 1000
    prod = producer(bootstrap)
    plan = {submit(prod, config(cs.url, cols, title=f"{name}-{i}", light=True)): cols
            for i, cols in enumerate(request_columns()[:N_REQUESTS])}
    assert prod.flush(30) == 0
    tally.sent = len(plan)
    before = follow(bootstrap, list(plan), 120, until=when)
    tally.in_flight = sum(not v.done for v in before.values())
    done_units = sum(v.units_done for v in before.values())

    outputs: list[float] = []  # when each answer record was read, from the fault on
    read: dict[str, dict[str, RequestView] | BaseException] = {}

    reading = threading.Event()

    def note(view: RequestView) -> None:
        outputs.append(time.monotonic())
        reading.set()

    def reader() -> None:
        try:
            read["views"] = follow(bootstrap, list(plan), ANSWER_S + 60, on_update=note,
                                   until=lambda vs: all(v.done for v in vs.values()) or time.monotonic() > deadline)
            read["at"] = time.monotonic()  # type: ignore[assignment]
        except BaseException as exc:  # noqa: BLE001 - raised by the test
            read["error"] = exc

    # The answers are read in a thread, the fault runs in this one: a broker JVM dies with the thread that started
    # it (PR_SET_PDEATHSIG, `die_with_parent`), so a node started again by a fault must be started from here.
    # The reader finds its offsets before the fault: asked while partitions have no leader (two brokers down) or
    # a paused one, the offset queries time out (`timex-stream watch` started then fails after 30 s, and says so).
    deadline = time.monotonic() + ANSWER_S + 30
    thread = threading.Thread(target=reader, name=f"answers of {name}", daemon=True)
    thread.start()
    assert reading.wait(60), "the reader read nothing in 60 s"
    fault_at = time.monotonic()
    try:
        said = fault()
    finally:
        thread.join(ANSWER_S + 90)
    assert not thread.is_alive(), f"the answers of {name} were still being read"
    if "error" in read:
        raise read["error"]  # type: ignore[misc]
    views: dict[str, RequestView] = read["views"]  # type: ignore[assignment]
    last_answer: float = read["at"]  # type: ignore[assignment]
    tally.at_fault = f"{said}; {done_units} units done before"
    tally.lost = sum(not v.done for v in views.values())
    for rid, view in views.items():
        if not view.done:
            tally.wrong.append(f"{rid}: no final answer ({view.status}, {view.units_done}/{view.units_total} units)")
        elif view.status != "done" or set(view.results) != set(plan[rid]):
            tally.wrong.append(f"{rid}: {view.status}, answers for {sorted(view.results)}, not {plan[rid]}")
        else:
            wrong = [f"{rid}/{s}: {d}" for s in plan[rid] for d in differences(view.results[s], cs.expected[s])]
            tally.wrong += wrong
            tally.answered += not wrong
    records = [decode_as("BestModel", m.value()) for m in read_range(bootstrap, BEST_MODELS.name, since)
               if m.key() is not None and m.key().decode() in plan]
    tally.duplicated = count_duplicates([(r["request_id"], r["series"]) for r in records])
    tally.wrong += [f"{r['request_id']}/{r['series']} on {BEST_MODELS.name}: {d}" for r in records
                    for d in differences(r, cs.expected[r["series"]])]
    times = sorted([fault_at, *(t for t in outputs if t >= fault_at), last_answer])
    longest_gap = max(b - a for a, b in zip(times, times[1:], strict=False))
    tally.seconds = time.monotonic() - t0
    row = f"{tally.row()}  {longest_gap:>9.1f} s"
    cs.rows.append(row)
    print(f"\n{HEADER}\n{row}")

    stopped = {n: p.returncode for n, p in cs.stack.children.items() if p.poll() is not None}
    assert not stopped, f"services exited during {name}: {stopped}"
    assert tally.in_flight >= N_REQUESTS // 2, f"only {tally.in_flight} requests in flight when the fault hit"
    assert tally.lost == 0 and not tally.wrong, "\n".join(tally.wrong[:20])
    assert tally.answered == tally.sent
    assert tally.duplicated == 0
    if max_gap is not None:
        assert longest_gap <= max_gap, f"no answer for {longest_gap:.1f} s after the fault hit"
    return longest_gap


# --- the table -------------------------------------------------------------------------------------------------

def test_kill_9_of_the_leader_of_configs_and_datasets(on_cluster: ClusterStack) -> None:
    cluster = on_cluster.cluster

    def fault() -> str:
        victim = leader_of_configs_and_datasets(cluster)
        cluster.node(victim).kill()
        return f"broker {victim} killed"

    try:
        run_scenario(on_cluster, "kill -9 leader", fault)
    finally:
        restore(cluster)


def test_kill_9_of_the_active_controller_then_back(on_cluster: ClusterStack) -> None:
    """Every node is a controller and a broker: the one leading the controller quorum goes, a new controller is
    elected, and the node, started again on its data dir, rejoins every ISR (`restore` waits for it)."""
    cluster = on_cluster.cluster

    def fault() -> str:
        victim = cluster.active_controller()
        assert victim is not None, "no controller leader in the node logs"
        cluster.node(victim).kill()
        time.sleep(DOWN_S)
        cluster.node(victim).start()
        return f"controller {victim} killed, back after {DOWN_S} s"

    try:
        run_scenario(on_cluster, "kill -9 controller+back", fault)
        wait_all_in_sync(cluster)
    finally:
        restore(cluster)


def test_rolling_restart_of_the_3_brokers(on_cluster: ClusterStack) -> None:
    cluster = on_cluster.cluster

    def fault() -> str:
        for node in cluster.nodes:
            node.stop()  # SIGTERM: a controlled shutdown moves its leaderships first
            node.start()
            wait_all_in_sync(cluster)
        return "3 brokers restarted one by one"

    try:
        run_scenario(on_cluster, "rolling restart", fault)
    finally:
        restore(cluster)


def _metric(url: str, name: str) -> float | None:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - our own loopback service
        text = resp.read().decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_two_brokers_down_writes_wait_then_resume(on_cluster: ClusterStack) -> None:
    """Below min ISR (and below the controller quorum's majority): writes are refused. The services wait, say so
    once (a WARN line and `timex_produce_refused` 1 on /metrics) and carry on when one broker returns."""
    cluster, stack = on_cluster.cluster, on_cluster.stack
    seen: dict[str, float | None] = {}

    def fault() -> str:
        victims = [n for n in (1, 2, 3) if n != leader_of_configs_and_datasets(cluster)]
        for v in victims:
            cluster.node(v).kill()
        time.sleep(REFUSED_S)
        for instance, port in stack.web_ports.items():
            seen[instance] = _metric(f"http://127.0.0.1:{port}/metrics", "timex_produce_refused")
        cluster.node(victims[0]).start()
        return f"brokers {victims} killed, {victims[0]} back after {REFUSED_S} s"

    try:
        # As soon as units flow: on a quiet machine the 36 requests were all answered before a later fault hit,
        # and then no write was left for the brokers to refuse.
        gap = run_scenario(on_cluster, "2 brokers down", fault, max_gap=None,
                           when=lambda vs: sum(v.units_done for v in vs.values()) >= 1)
    finally:
        restore(cluster)
    if gap < REFUSED_AFTER_S:  # no write waited: every answer had been written before the brokers went down
        print("2 brokers down: every answer was written before the brokers went down; no write was refused")
        return
    refusing = [i for i, v in seen.items() if v == 1]
    assert refusing, f"no service said its writes were refused: timex_produce_refused {seen}"
    for instance in refusing:
        log = (stack.log_dir / f"{instance}.log").read_text(errors="replace")
        assert "writes to Kafka not acknowledged" in log, f"{instance}: no WARN line"


def test_a_second_validator_added_then_one_killed(on_cluster: ClusterStack) -> None:
    stack = on_cluster.stack

    def fault() -> str:
        stack.launch("validator", "validator-2")
        wait_for_members(stack.bootstrap, "timex-validator", PREDICTIONS.name, 2, timeout=90)
        time.sleep(3)  # both work for a while
        first = stack.children.pop("validator")
        stack.web_ports.pop("validator", None)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        return "validator-2 added, validator killed"

    run_scenario(on_cluster, "validator +1, -1", fault)


def test_one_broker_paused_30_s(on_cluster: ClusterStack) -> None:
    """A network partition of one broker: SIGSTOP, so its sockets stay open and answer nothing. The controller
    fences it after 3 s (about 6 s when it was the active controller: a new one is elected first) and its
    partitions get new leaders; the healthy leaders answer the writes they held (acks=all) at the fencing, and
    the services' clients send what waited on the paused broker again to the new leaders as soon as their metadata
    shows it fenced (`timex_stream/runtime/silent_broker.py`; the readers give up a request after
    `SOCKET_TIMEOUT_MS`), so the answers stop for about the fencing time, as with a kill, not for the whole
    pause."""
    cluster = on_cluster.cluster

    def fault() -> str:
        victim = leader_of_configs_and_datasets(cluster)
        role = " (the active controller)" if victim == cluster.active_controller() else ""  # the longer case
        cluster.node(victim).pause()
        time.sleep(PAUSE_S)
        cluster.node(victim).resume()
        return f"broker {victim}{role} paused {PAUSE_S} s"

    try:
        run_scenario(on_cluster, "broker paused 30 s", fault)
    finally:
        restore(cluster)


# --- a live stream through a broker kill ---------------------------------------------------------------------

def _leader_of_key(leaders: list[int], key: str) -> int:
    """Of the leaders of a topic's partitions (by partition id), the one of the partition the services' producers
    (aiokafka's murmur2, as Java's) put `key` on."""
    return leaders[(murmur2(key.encode()) & 0x7FFFFFFF) % len(leaders)]


def test_a_live_stream_survives_a_kill_9_of_the_leader_of_its_partitions(on_cluster: ClusterStack) -> None:
    """The standing request of tests/live/test_restarts.py, on the cluster: a request id whose revisions of both
    series go to partitions of `forecasts` and `forecast-history` led by one broker, a source topic (replicated 3
    times) led by the same broker; that broker is killed (kill -9) while the stream goes on. Every revision
    written equals the undisturbed computation's of its number, none is missing at the end, none goes back."""
    cluster, bootstrap = on_cluster.cluster, on_cluster.cluster.bootstrap_servers
    by_partition = {}
    for t in (FORECASTS, FORECAST_HISTORY):
        meta = admin(bootstrap).list_topics(t.name, timeout=10).topics[t.name].partitions
        by_partition[t.name] = [meta[i].leader for i in sorted(meta)]
    rid, victim = "", 0
    for _ in range(200):  # a request id whose series' revisions all land on partitions of one leader
        rid = new_request_id()
        leaders = {_leader_of_key(by_partition[t], series_key(rid, s)) for t in by_partition for s in SERIES}
        if len(leaders) == 1:
            victim = leaders.pop()
            break
    assert victim > 0, "no request id with all its revisions on one leader's partitions"
    topic = f"live-src-{rid}"
    replicas = [victim, *(n.node_id for n in cluster.nodes if n.node_id != victim)]  # the first is the leader
    client = admin(bootstrap)
    client.create_topics([NewTopic(topic, 1, replica_assignment=[replicas])])[topic].result(30)
    config = stream_config(topic)
    config["model_parameters"]["models"] = "naive,seasonal_naive"  # light: the stream is what is under test
    prod = producer(bootstrap)
    produce_stream(prod, topic, range(MIN_POINTS + 1))
    assert submit(prod, config, request_id=rid) == rid
    seen = Seen(bootstrap, rid, topic)
    try:
        wait_until(lambda: has_revision(seen, MIN_POINTS + 1), TIMEOUT, "the first revisions")
        assert _leaders(cluster, topic) == [victim]
        days = MIN_POINTS + 31
        produce_stream(prod, topic, range(MIN_POINTS + 1, MIN_POINTS + 11), flush_each=True)
        writer = threading.Thread(target=produce_stream, args=(producer(bootstrap), topic,
                                                         range(MIN_POINTS + 11, days), True))
        writer.start()  # the stream goes on while its leader dies (the producer retries to the new one)
        time.sleep(1)
        cluster.node(victim).kill()
        writer.join(120)
        assert not writer.is_alive()
        histories = assert_undisturbed(seen, config, days)
        print(f"\nlive stream, broker {victim} killed mid-stream: revisions of {SERIES}: "
              + "; ".join(f"{s} {len(h)} distinct, {h[0]['revision']}..{h[-1]['revision']}"
                          for s, h in histories.items()))
        stopped = {n: p.returncode for n, p in on_cluster.stack.children.items() if p.poll() is not None}
        assert not stopped, f"services exited: {stopped}"
    finally:
        seen.close()
        restore(cluster)
