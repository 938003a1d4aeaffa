"""Operating the services: health and metrics pages; SIGTERM or kill -9 of any stream service mid-request, then a
restart, with nothing lost; the validator's repair of units that never arrived."""

from __future__ import annotations

import json
import signal
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable

import pandas as pd
import pytest
from confluent_kafka import Producer

from ingestion.ingest import ingest
from schemas import series_key
from schemas.topics import DATASETS, PREDICTIONS, PROGRESS, SERIES
from tests.plugins.flows import TIMEOUT, best_models_for, stall_repairs, unanswered_units
from timex_stream.runtime.kafka import send
from timex_stream.runtime.series_store import SeriesStore
from timex_stream.runtime.submit import submit
from timex_stream.runtime.unit_work import job_for, predict
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack, wait_for_members


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read().decode()


def test_health_and_metrics_of_every_stream_service(stack: Stack, producer_: Producer, serve_csv: Callable,
                                                    config_for: Callable, frame_: pd.DataFrame) -> None:
    rid = submit(producer_, config_for(serve_csv("metrics.csv", frame_), ["trend"], models="naive"))
    assert follow(stack.bootstrap, [rid], TIMEOUT)[rid].status == "done"
    for service in ("ingestion", "predictor", "validator"):
        status, body = _get(f"http://127.0.0.1:{stack.web_ports[service]}/health")
        health = json.loads(body)
        assert status == 200 and health["service"] == service and health["status"] == "ok"
        assert health["assigned"], f"{service} has no partitions assigned"
        status, metrics = _get(f"http://127.0.0.1:{stack.web_ports[service]}/metrics")
        assert status == 200
        consumed = [line for line in metrics.splitlines() if line.startswith("timex_records_consumed_total{")]
        assert consumed and any(float(line.rsplit(" ", 1)[1]) >= 1 for line in consumed), metrics[:500]


def test_two_predictor_processes_share_one_single_series_request(stack: Stack, producer_: Producer,
                                                                serve_csv: Callable, config_for: Callable,
                                                                frame_: pd.DataFrame) -> None:
    """A second predictor joins the group: one series' costly units (one per record; cheap ones travel in
    batches) spread over both, each runs about half."""
    stack.launch("predictor", instance="predictor-2")
    try:
        wait_for_members(stack.bootstrap, "timex-predictor", DATASETS.name, 2)
        before = {p: _datasets_consumed(stack, p) for p in ("predictor", "predictor-2")}
        config = config_for(serve_csv("shared.csv", frame_), ["seasonal"], models="exponentialsmoothing",
                            possible_transformations="none,log_modified", delta_training_percentage=8)
        rid = submit(producer_, config)
        view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
        assert view.status == "done"
        ran = {p: _datasets_consumed(stack, p) - before[p] for p in before}
        units = view.results["seasonal"]["units_total"] + 1  # + the model's final refit
        assert sum(ran.values()) == units and min(ran.values()) >= units // 4, ran
    finally:
        second = stack.children.pop("predictor-2")
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    wait_for_members(stack.bootstrap, "timex-predictor", DATASETS.name, 1)


def _datasets_consumed(stack: Stack, instance: str) -> float:
    _, metrics = _get(f"http://127.0.0.1:{stack.web_ports[instance]}/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith('timex_records_consumed_total{topic="datasets"}'))


@pytest.mark.parametrize(("service", "stop", "series"), [
    ("validator", signal.SIGTERM, ["seasonal", "walk", "trend"]),
    ("validator", signal.SIGKILL, ["seasonal", "walk", "trend"]),
    ("predictor", signal.SIGTERM, ["seasonal", "walk"]),
    ("predictor", signal.SIGKILL, ["seasonal", "walk", "trend", "bumpy"]),
], ids=["sigterm-validator", "kill-9-validator", "sigterm-predictor", "kill-9-predictor"])
def test_stop_mid_request_then_restart_answers_once_and_loses_nothing(
        stack: Stack, producer_: Producer, serve_csv: Callable, config_for: Callable, frame_: pd.DataFrame,
        service: str, stop: signal.Signals, series: list[str]) -> None:
    """Stop `service` once units are flowing, start it again: every series answered exactly once. The
    validator's table is rebuilt from its changelog (units that arrived before the stop count): no unit had to
    be asked for again. The predictor's restarted consumer itself answers every unit the stopped one had taken:
    every `datasets` record has its `predictions` record (counted, not read off the validator's stall timer,
    which on a loaded machine can fire while the predictor is still restarting and ask for a unit on its way)."""
    config = config_for(serve_csv(f"{service}-{stop.name}.csv", frame_), series,
                        models="exponentialsmoothing,theta,naive", possible_transformations="none,log_modified",
                        delta_training_percentage=8)
    rid = submit(producer_, config)
    follow(stack.bootstrap, [rid], TIMEOUT, until=lambda v: v[rid].units_done >= 3)
    _stop_and_restart(stack, service, stop)
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    assert view.status == "done" and set(view.results) == set(series)
    assert all(r["complete"] and r["units_done"] == r["units_total"] for r in view.results.values())
    assert Counter(best_models_for(stack.bootstrap, rid)) == Counter(dict.fromkeys(series, 1))
    if service == "validator":
        assert stall_repairs(stack, rid) == []
    else:
        assert unanswered_units(stack.bootstrap, rid) == Counter()


def test_kill_9_ingestion_with_requests_in_flight_then_restart_answers_each_once(
        stack: Stack, producer_: Producer, serve_csv: Callable, config_for: Callable, frame_: pd.DataFrame) -> None:
    url = serve_csv("kill-ingestion.csv", frame_)
    rids = [submit(producer_, config_for(url, ["walk", "trend"], models="naive,theta")) for _ in range(4)]
    follow(stack.bootstrap, rids, TIMEOUT, until=lambda v: v[rids[0]].accepted)
    _stop_and_restart(stack, "ingestion", signal.SIGKILL)
    views = follow(stack.bootstrap, rids, TIMEOUT)
    for rid in rids:
        assert views[rid].status == "done" and set(views[rid].results) == {"walk", "trend"}, views[rid].to_dict()
        assert Counter(best_models_for(stack.bootstrap, rid)) == Counter({"walk": 1, "trend": 1})
        assert stall_repairs(stack, rid) == []


def test_units_that_never_arrive_are_planned_and_sent_again(stack: Stack, producer_: Producer,
                                                           config_for: Callable, frame_: pd.DataFrame) -> None:
    """Only the first unit of a series reaches the predictions topic (as if the rest were lost): after
    TIMEX_VALIDATOR_STALL_S the validator re-plans the missing units from the series' length that unit's ref
    carries, the predictor runs them (reading the series where the ref points) and the series is answered in full."""
    rid = f"lost-{uuid.uuid4().hex[:8]}"
    config = config_for("upload:lost.csv", ["walk"], models="naive,theta")
    out = ingest({"request_id": rid, "config_json": json.dumps(config), "csv_data": frame_.to_csv(index=False).encode(),
                  "replay_of": None}, fetch=lambda url: pytest.fail("no download expected"))
    landed: list[tuple[int, int]] = []
    for topic, key, record in out.opening() + out.parts() + out.after():
        if topic == SERIES:
            send(producer_, SERIES, key, record, on_delivery=lambda _err, msg: landed.append((msg.partition(),
                                                                                               msg.offset())))
        elif topic == PROGRESS:
            send(producer_, PROGRESS, key, record)
    assert producer_.flush(10) == 0 and len(landed) == len(out.stored)
    units = out.datasets(sorted(landed))
    store = SeriesStore(stack.bootstrap)
    first_only = {**units[0][1], "more": []}  # naive and theta units travel in one batch: keep its first unit
    try:
        send(producer_, PREDICTIONS, series_key(rid, "walk"), predict(job_for(store, first_only)))
    finally:
        store.close()
    producer_.flush(10)
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    best = view.results["walk"]
    assert view.status == "done" and best["complete"] and best["units_done"] == best["units_total"] == out.units
    repairs = stall_repairs(stack, rid)
    assert len(repairs) == 1 and f"sending {out.units - 1} again" in repairs[0], repairs


def _stop_and_restart(stack: Stack, service: str, stop: signal.Signals) -> None:
    code = stack.restart(service, stop)
    assert code == (0 if stop == signal.SIGTERM else -stop), f"the {service} stopped with {code} on {stop.name}"


def test_a_requests_verbose_debug_logs_its_units_fits(stack: Stack, producer_: Producer, serve_csv: Callable,
                                                     config_for: Callable, frame_: pd.DataFrame) -> None:
    """TIMEX's `verbose`: at DEBUG the predictor logs each unit's fit, metrics and time for that request alone."""
    url = serve_csv("verbose.csv", frame_)
    loud = submit(producer_, {**config_for(url, ["trend"], models="naive,theta"), "verbose": "DEBUG"})
    plain = submit(producer_, config_for(url, ["trend"], models="naive,theta"))
    views = follow(stack.bootstrap, [loud, plain], TIMEOUT)
    assert views[loud].status == views[plain].status == "done"
    lines = [json.loads(line) for path in stack.log_dir.glob("predictor*.log")
             for line in path.read_text(errors="replace").splitlines() if line.startswith("{")]
    fits = {rid: [d["msg"] for d in lines if d.get("request_id") == rid and d["level"] == "DEBUG"]
            for rid in (loud, plain)}
    assert fits[plain] == []
    assert fits[loud] and all(m.startswith("trend fits: ") for m in fits[loud])
    assert any("naive/none/window" in m for m in fits[loud]) and any("theta/none/window" in m for m in fits[loud])
    assert all(" in " in m and " s" in m for m in fits[loud])
