"""Operating the services: health and metrics pages, graceful stop on SIGTERM with state recovery."""

from __future__ import annotations

import json
import signal
import urllib.request
from collections import Counter
from collections.abc import Callable

import pandas as pd
import pytest
from confluent_kafka import Producer

from timex_stream.follow import follow
from timex_stream.stack import Stack
from timex_stream.submit import submit

from .test_end_to_end import TIMEOUT, best_models_for


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


@pytest.mark.xfail(strict=False, reason=(
    "faust-streaming 0.15.3 can skip, and ack, predictions it fetched while the restarted validator rebalances; "
    "a series none of whose units reach the new validator is then unknown to it and never answered (the stall "
    "repair only helps series it has seen). Known gap, see the issue note."))
def test_sigterm_validator_mid_request_then_restart_answers_once(stack: Stack, producer_: Producer,
                                                                 serve_csv: Callable, config_for: Callable,
                                                                 frame_: pd.DataFrame) -> None:
    """The validator's table is rebuilt from its changelog: units that arrived before the stop count."""
    _sigterm_mid_request_then_restart(stack, producer_, serve_csv("sigterm.csv", frame_), config_for, "validator",
                                      ["seasonal", "walk", "trend"])


def test_sigterm_predictor_mid_request_then_restart_answers_once(stack: Stack, producer_: Producer,
                                                                 serve_csv: Callable, config_for: Callable,
                                                                 frame_: pd.DataFrame) -> None:
    _sigterm_mid_request_then_restart(stack, producer_, serve_csv("sigterm-p.csv", frame_), config_for, "predictor",
                                      ["seasonal", "walk"])


def _sigterm_mid_request_then_restart(stack: Stack, producer_: Producer, url: str, config_for: Callable,
                                      service: str, series: list[str]) -> None:
    """SIGTERM `service` once units are flowing, start it again: every series answered, exactly once."""
    config = config_for(url, series, models="exponentialsmoothing,theta,naive",
                        possible_transformations="none,log_modified", delta_training_percentage=8)
    rid = submit(producer_, config)
    follow(stack.bootstrap, [rid], TIMEOUT, until=lambda v: v[rid].units_done >= 3)
    process = stack.children[service]
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, f"the {service} did not stop cleanly on SIGTERM"
    stack.launch(service)
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    assert view.status == "done" and set(view.results) == set(series)
    assert all(r["complete"] and r["units_done"] == r["units_total"] for r in view.results.values())
    assert Counter(best_models_for(stack.bootstrap, rid)) == Counter(dict.fromkeys(series, 1))
