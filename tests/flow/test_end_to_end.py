"""The whole flow on the real broker with real service processes: configs → ingestion → datasets →
predictor → predictions → validator → best-models, with failures and dead letters."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pandas as pd
from confluent_kafka import Producer

from schemas.topics import CONFIGS, DATASETS, DEAD_LETTERS, PREDICTIONS
from tests.plugins.flows import TIMEOUT
from timex_stream.runtime.kafka import consumer
from timex_stream.runtime.records import history_of
from timex_stream.runtime.request_view import RequestView
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack


def test_multi_series_request_gets_one_best_model_per_series(stack: Stack, producer_: Producer, serve_csv: Callable,
                                                             config_for: Callable, frame_: pd.DataFrame) -> None:
    url = serve_csv("multi.csv", frame_)
    rid = submit(producer_, config_for(url, ["seasonal", "walk", "trend"]))
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    assert view.status == "done", view.to_dict()
    assert view.series_names == ["seasonal", "trend", "walk"]
    assert set(view.results) == {"seasonal", "trend", "walk"}
    for series, best in view.results.items():
        compared = {row["model"] for row in best["comparison"]}
        assert compared == {"naive", "seasonal_naive", "exponentialsmoothing"}, series
        assert best["complete"] and best["units_done"] == best["units_total"] > 0
        assert len(best["forecast"]["yhat"]) == 6 and len(history_of(best)) == 72
        assert best["metrics"]["MAE"] == min(r["metrics"]["MAE"] for r in best["comparison"] if not r["error"])
    # The seasonal series must not be won by plain naive.
    assert view.results["seasonal"]["model"] in {"seasonal_naive", "exponentialsmoothing"}
    assert view.failures == []


def test_bad_inputs_fail_with_stage_and_message(stack: Stack, producer_: Producer, serve_csv: Callable,
                                                config_for: Callable, frame_: pd.DataFrame) -> None:
    url = serve_csv("ok.csv", frame_)
    bad_url = submit(producer_, config_for(url.replace("ok.csv", "missing.csv"), ["walk"]))
    bad_column = submit(producer_, config_for(url, ["nonexistent"]))
    bad_model = submit(producer_, config_for(url, ["walk"], models="naive,prophett"))
    views = follow(stack.bootstrap, [bad_url, bad_column, bad_model], TIMEOUT)
    expectations = {bad_url: ("download", "HTTP 404"), bad_column: ("data", "nonexistent"),
                    bad_model: ("config", "prophett")}
    for rid, (stage, words) in expectations.items():
        view = views[rid]
        assert view.status == "failed", view.to_dict()
        fatal = [f for f in view.failures if f["fatal"]]
        assert fatal and fatal[0]["stage"] == stage and words in fatal[0]["message"], view.failures
    assert "models" in views[bad_model].failures[0]["message"]  # names the field


def test_good_and_bad_series_in_one_request(stack: Stack, producer_: Producer, serve_csv: Callable,
                                            config_for: Callable, frame_: pd.DataFrame) -> None:
    frame = frame_.copy()
    frame["empty"] = float("nan")
    url = serve_csv("mixed.csv", frame)
    rid = submit(producer_, config_for(url, ["walk", "empty"]))
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    assert view.status == "done"
    assert set(view.results) == {"walk"}
    assert [f["series"] for f in view.failures] == ["empty"] and view.failures[0]["stage"] == "data"


def test_failing_models_are_reported_and_a_request_with_no_forecast_still_ends(
        stack: Stack, producer_: Producer, serve_csv: Callable, config_for: Callable, frame_: pd.DataFrame) -> None:
    """A log transformation cannot fit a series with negative values: every unit of such a series fails in the
    model. One bad series among good ones → both answers; every series bad → a final "failed" answer."""
    frame = frame_.copy()
    frame["below"], frame["deep"] = -frame["walk"], -frame["trend"] - 100
    url = serve_csv("negative.csv", frame)
    mixed = submit(producer_, config_for(url, ["walk", "below"], models="naive", possible_transformations="log"))
    hopeless = submit(producer_, config_for(url, ["below", "deep"], models="naive", possible_transformations="log"))
    bad = {mixed: {"below"}, hopeless: {"below", "deep"}}

    def model_failures(view: RequestView) -> list[dict]:
        return [f for f in view.failures if f["stage"] == "model"]

    # Failures and answers are on different topics: wait for both, not just for every series' answer.
    views = follow(stack.bootstrap, list(bad), TIMEOUT, until=lambda vs: all(
        vs[r].done and {f["series"] for f in model_failures(vs[r])} == bad[r] for r in bad))
    assert views[mixed].status == "done" and views[mixed].results["walk"]["model"] == "naive"
    assert views[mixed].results["below"]["model"] is None
    assert views[hopeless].status == "failed", views[hopeless].to_dict()
    for rid in bad:
        assert any(f["model"] == "naive" and "log" in f["message"] for f in model_failures(views[rid]))
        assert any("no model produced a forecast" in f["message"] for f in model_failures(views[rid]))


def test_plain_json_config_with_and_without_key(stack: Stack, producer_: Producer, serve_csv: Callable,
                                                config_for: Callable, frame_: pd.DataFrame) -> None:
    url = serve_csv("plain.csv", frame_)
    rid = f"plain-{uuid.uuid4().hex[:8]}"
    producer_.produce(CONFIGS.name, key=rid.encode(), value=json.dumps(config_for(url, ["trend"])).encode())
    producer_.flush(10)
    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    assert view.status == "done" and set(view.results) == {"trend"}


def test_poison_bytes_go_to_dead_letters_and_service_goes_on(stack: Stack, producer_: Producer,
                                                              serve_csv: Callable, config_for: Callable,
                                                              frame_: pd.DataFrame) -> None:
    marker = uuid.uuid4().hex.encode()
    for topic in (CONFIGS, DATASETS, PREDICTIONS):
        producer_.produce(topic.name, key=b"poison/" + marker, value=b"\xc3\x01garbage" + marker)
    producer_.produce(CONFIGS.name, key=b"poison-json-" + marker, value=b"{not json" + marker)
    producer_.flush(10)
    url = serve_csv("after-poison.csv", frame_)
    rid = submit(producer_, config_for(url, ["walk"]))
    assert follow(stack.bootstrap, [rid], TIMEOUT)[rid].status == "done"
    # Every poison record is parked with its origin and reason.
    cons = consumer(stack.bootstrap, f"t-{marker.decode()}")
    cons.subscribe([DEAD_LETTERS.name])
    sources: list[str] = []
    deadline = time.monotonic() + 30
    while len(sources) < 4 and time.monotonic() < deadline:
        msg = cons.poll(0.5)
        if msg is not None and not msg.error() and marker in msg.value():
            headers = dict(msg.headers())
            assert headers["error"]
            sources.append(headers["source.topic"].decode())
    cons.close()
    assert sorted(sources) == sorted(["configs", "configs", "datasets", "predictions"])
    # The config producer who named a key gets told.
    view = follow(stack.bootstrap, [f"poison-json-{marker.decode()}"], 30)[f"poison-json-{marker.decode()}"]
    assert view.failures[0]["stage"] == "decode"
