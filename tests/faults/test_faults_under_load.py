"""Faults under load: with more than 100 requests in flight, kill -9 each service in turn and restart it, then stop
the broker (SIGTERM, then kill -9) and start it again on the same data dir with the services left running.
Each time every request gets exactly one final answer, equal to the fault-free one, and the services carry
on by themselves.

The module runs its OWN embedded broker (own data dir, fixed ports: KRaft records them, so a restart on the
same data dir needs the same ones) and its own services, so stopping that broker disturbs no other test.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Producer

from schemas import decode_as
from schemas.topics import BEST_MODELS
from timex_stream.runtime.history import read_range
from timex_stream.runtime.kafka import producer
from timex_stream.runtime.ports import free_port
from timex_stream.runtime.records import now_ms
from timex_stream.runtime.request_view import RequestView
from timex_stream.runtime.settings import Settings
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack

from .load import (
    N_KAFKA,
    Tally,
    config,
    count_duplicates,
    differences,
    gateway_view,
    reference,
    request_columns,
    submit_to_gateway,
    wide_frame,
)

pytestmark = pytest.mark.slow
SERVICES = ["ingestion", "predictor", "validator", "gateway"]
ANSWER_S = 180  # every request of a scenario answered within this (a healthy run needs well under a minute)
BROKER_DOWN_S = 10


@dataclass
class FaultStack:
    stack: Stack
    url: str
    expected: dict[str, dict]
    producer: Producer
    tallies: list[Tally] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.stack.bootstrap

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.stack.settings.gateway_port}"


@pytest.fixture(scope="module")
def faults(csv_server: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    base, root = csv_server
    columns = [c for request in request_columns() for c in request]
    frame = wide_frame(len(columns))
    frame.to_csv(root / "faults-wide.csv", index=False)
    url = f"{base}/faults-wide.csv"
    expected = reference(url, (root / "faults-wide.csv").read_bytes(), columns)
    data_dir = tmp_path_factory.mktemp("faults")
    settings = dataclasses.replace(Settings.from_env(), bootstrap_servers=None, data_dir=data_dir,
                                   kafka_port=free_port(), kafka_controller_port=free_port(), gateway_port=free_port())
    stack = Stack(settings, only=SERVICES)
    with pytest.MonkeyPatch.context() as env:  # what the service processes inherit
        env.setenv("TIMEX_URL_ALLOWLIST", "127.0.0.0/8")  # the CSV server is on loopback
        # The default stall: a backlog of 100 requests must not look like lost units.
        env.setenv("TIMEX_VALIDATOR_STALL_S", str(Settings().validator_stall_s))
        fs = None
        try:
            stack.start()
            fs = FaultStack(stack, url, expected, producer(stack.bootstrap))
            yield fs
        finally:
            stack.stop()
            for log in sorted((data_dir / "logs").glob("*.log")):  # shown by pytest when a test failed
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")
            if fs is not None:
                print("\n".join(["faults under load:", Tally.HEADER, *(t.row() for t in fs.tallies)]))
    left = _processes_of(data_dir)
    assert not left, f"processes outlived the fault stack: {left}"


def _processes_of(data_dir: Path) -> list[str]:
    """Processes (services, their pool workers, the broker JVM) started for `data_dir`, still alive."""
    marks = (f"{data_dir}/".encode(), f"TIMEX_DATA_DIR={data_dir}\0".encode())
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":  # a zombie is dead
                continue
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            seen = command + (proc / "environ").read_bytes()
        except OSError:
            continue
        if int(proc.name) != os.getpid() and any(m in seen for m in marks):
            found.append(f"{proc.name}: {command[:160]!r}")
    return found


def _units_flowing(views: dict[str, RequestView]) -> bool:
    return sum(v.units_done for v in views.values()) >= 10


def run_scenario(fs: FaultStack, name: str, fault: Callable[[], None],
                 when: Callable[[dict[str, RequestView]], bool] = _units_flowing) -> Tally:
    """Send the load, wait until `when` says the work is under way, apply `fault`, then collect and judge
    every answer: from a reader of the result topics, from the best-models topic itself and from the gateway."""
    tally, t0, since = Tally(name), time.monotonic(), now_ms() - 1000
    plan: dict[str, list[str]] = {}
    for i, columns in enumerate(request_columns()):
        body = config(fs.url, columns, title=f"{name}-{i}")
        rid = submit(fs.producer, body) if i < N_KAFKA else submit_to_gateway(fs.gateway_url, body, fs.stack.api_token)
        plan[rid] = columns
    tally.sent = len(plan)
    rids = list(plan)
    before = follow(fs.bootstrap, rids, 120, until=when)
    tally.in_flight = sum(not v.done for v in before.values())
    tally.at_fault = (f"{sum(v.accepted for v in before.values())} accepted, "
                      f"{sum(v.units_done for v in before.values())} units done")
    fault()
    deadline = time.monotonic() + ANSWER_S
    views = follow(fs.bootstrap, rids, ANSWER_S + 60,
                   until=lambda vs: all(v.done for v in vs.values()) or time.monotonic() > deadline)
    tally.lost = sum(not v.done for v in views.values())
    for rid, view in views.items():
        if not view.done:
            tally.wrong.append(f"{rid}: no final answer ({view.status}, {view.units_done}/{view.units_total} units)")
            continue
        wrong = _judge(rid, view.status, view.results, plan[rid], fs.expected)
        tally.wrong += wrong
        tally.answered += not wrong
    tally.wrong += _judge_gateway(fs, plan)
    # Read last (late duplicates count too). Every best-models record, duplicates included, must be the
    # fault-free answer: a reader keeps one per series, whichever copy it is.
    records = [decode_as("BestModel", m.value()) for m in read_range(fs.bootstrap, BEST_MODELS.name, since)
               if m.key() is not None and m.key().decode() in plan]
    on_topic = [(r["request_id"], r["series"]) for r in records]
    answered_series = set(on_topic)
    tally.duplicated = count_duplicates(on_topic)
    tally.wrong += [f"{rid}/{s}: not on {BEST_MODELS.name}" for rid, columns in plan.items() for s in columns
                    if (rid, s) not in answered_series]
    tally.resent = _stall_repairs(fs, plan)
    tally.wrong += [f"{r['request_id']}/{r['series']} on {BEST_MODELS.name}: {d}" for r in records
                    for d in differences(r, fs.expected[r["series"]])]
    tally.seconds = time.monotonic() - t0
    fs.tallies.append(tally)
    print(f"\n{Tally.HEADER}\n{tally.row()}")
    stopped = {n: p.returncode for n, p in fs.stack.children.items() if p.poll() is not None}
    assert not stopped, f"services exited during {name}: {stopped}"
    assert tally.in_flight >= 100, f"only {tally.in_flight} requests in flight when the fault hit"
    assert tally.lost == 0 and not tally.wrong, "\n".join(tally.wrong[:20])
    assert tally.answered == tally.sent
    return tally


def _stall_repairs(fs: FaultStack, plan: dict[str, list[str]]) -> int:
    """Series of the scenario whose units the validator had to send again (it thought them lost)."""
    log = (fs.stack.log_dir / "validator.log").read_text(errors="replace")
    return sum("stalled" in line and line.split('"msg": "', 1)[-1].split("/", 1)[0] in plan
               for line in log.splitlines())


def _judge(rid: str, status: str, results: dict[str, dict], columns: list[str],
           expected: dict[str, dict]) -> list[str]:
    if status != "done" or set(results) != set(columns):
        return [f"{rid}: {status}, answers for {sorted(results)}, not {columns}"]
    return [f"{rid}/{s}: {d}" for s in columns for d in differences(results[s], expected[s])]


def _judge_gateway(fs: FaultStack, plan: dict[str, list[str]]) -> list[str]:
    """The gateway (restarted or not) answers every request in full: it rebuilds its state from the topics."""
    deadline = time.monotonic() + 60
    pending = dict(plan)
    wrong: list[str] = []
    while pending and time.monotonic() < deadline:
        for rid in list(pending):
            doc = gateway_view(fs.gateway_url, rid, fs.stack.api_token)
            if doc is not None and doc["done"]:
                wrong += [f"gateway {w}" for w in _judge(rid, doc["status"], doc["results"], pending.pop(rid),
                                                         fs.expected)]
        if pending:
            time.sleep(1)
    return wrong + [f"gateway: no final answer for {rid}" for rid in pending]


def _kill_9_and_restart(fs: FaultStack, service: str) -> Callable[[], None]:
    def fault() -> None:
        code = fs.stack.restart(service, signal.SIGKILL)
        assert code == -signal.SIGKILL, f"the {service} exited with {code} on kill -9"

    return fault


def _broker_down_and_up(fs: FaultStack, sig: signal.Signals) -> Callable[[], None]:
    def fault() -> None:
        assert fs.stack.broker is not None
        fs.stack.broker.stop(sig=sig)
        # The fault itself, not a wait: the broker stays down long enough for every client to notice (Faust's
        # session timeout is 10 s).
        time.sleep(BROKER_DOWN_S)
        assert fs.stack.start_broker() == fs.bootstrap  # same ports, same data dir: same cluster

    return fault


def test_kill_9_ingestion_under_load(faults: FaultStack) -> None:
    # The ingestion is the first stage: kill it once a few requests are accepted, most are still queued.
    run_scenario(faults, "kill -9 ingestion", _kill_9_and_restart(faults, "ingestion"),
                 when=lambda views: sum(v.accepted for v in views.values()) >= 3)


def test_kill_9_predictor_under_load(faults: FaultStack) -> None:
    run_scenario(faults, "kill -9 predictor", _kill_9_and_restart(faults, "predictor"))


def test_kill_9_validator_under_load(faults: FaultStack) -> None:
    run_scenario(faults, "kill -9 validator", _kill_9_and_restart(faults, "validator"))


def test_kill_9_gateway_under_load(faults: FaultStack) -> None:
    """The gateway is not on the path of the work: answers go on; once restarted it answers every request."""
    run_scenario(faults, "kill -9 gateway", _kill_9_and_restart(faults, "gateway"))


def test_broker_stop_and_restart_under_load(faults: FaultStack) -> None:
    run_scenario(faults, "broker SIGTERM+restart", _broker_down_and_up(faults, signal.SIGTERM))


def test_broker_kill_9_and_restart_under_load(faults: FaultStack) -> None:
    run_scenario(faults, "broker kill -9+restart", _broker_down_and_up(faults, signal.SIGKILL))
