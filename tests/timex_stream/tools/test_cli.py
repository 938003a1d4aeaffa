"""`timex-stream submit/watch/results/requests` against the real broker and service processes, and a config
produced as plain JSON by a bare confluent-kafka producer (no key): its ingestion-assigned id is findable."""

from __future__ import annotations

import csv
import io
import json
import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from confluent_kafka import Producer

from schemas.topics import CONFIGS
from tests.plugins.cli import FAST, TIMEOUT, Run
from tests.plugins.frames import make_config, synthetic_frame
from tests.plugins.gateways import Gateway
from timex_stream.runtime.records import history_of
from timex_stream.runtime.results import COMPARISON_KEYS
from timex_stream.tools.cli import _glue_relative_times
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack


def served(csv_server: tuple[str, Path], name: str, rows: int = 72) -> str:
    base, root = csv_server
    synthetic_frame(rows).to_csv(root / name, index=False)
    return f"{base}/{name}"


def config_file(tmp_path: Path, url: str, columns: list[str], **extra: object) -> str:
    path = tmp_path / f"config-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(make_config(url, columns, models=FAST, **extra)))
    return str(path)


def test_relative_times_after_time_options_are_values_not_options() -> None:
    assert _glue_relative_times(["replay", "--from", "-2h", "--to", "-30m", "--dry-run"]) == [
        "replay", "--from=-2h", "--to=-30m", "--dry-run"]
    assert _glue_relative_times(["requests", "--since", "2026-11-24", "--output", "json"]) == [
        "requests", "--since", "2026-11-24", "--output", "json"]


def test_submit_wait_json_has_best_model_metrics_and_forecast_per_series(
        cli: Run, stack: Stack, csv_server: tuple[str, Path], tmp_path: Path) -> None:
    url = served(csv_server, "cli-json.csv")
    code, out, err = cli("submit", config_file(tmp_path, url, ["seasonal", "trend"]), "--wait", "--output", "json")
    assert code == 0, err
    doc = json.loads(out)  # stdout is exactly one JSON document
    assert doc["status"] == "done" and set(doc["series"]) == {"seasonal", "trend"} and doc["failures"] == []
    assert set(doc["results"]) == {"seasonal", "trend"}
    view = follow(stack.bootstrap, [doc["request_id"]], 10)[doc["request_id"]]
    for name, s in doc["results"].items():
        best = view.results[name]
        assert s["model"] == best["model"] in {"naive", "seasonal_naive"} and s["transformation"] == "none"
        assert s["metrics"]["MAE"] == pytest.approx(best["metrics"]["MAE"]) and math.isfinite(s["metrics"]["MAE"])
        assert len(s["forecast"]["timestamps"]) == len(s["forecast"]["yhat"]) == 6
        assert s["forecast"]["lower_95"] is None or len(s["forecast"]["lower_95"]) == 6
        # What the webapp's charts draw: the history the answer carries and every scored unit.
        assert s["history"]["values"] == history_of(best).values.tolist() and len(s["history"]["timestamps"]) > 0
        assert {r["model"] for r in s["comparison"]} == {"naive", "seasonal_naive"}
        assert all(set(r) == set(COMPARISON_KEYS) for r in s["comparison"])
        assert sum(r["best_of_model"] for r in s["comparison"]) == 2
    assert doc["visualization"] == {"language": "en", "xcorr_graph_threshold": 0.0, "box_plot_frequency": "1W",
                                    "aggregate_box_plot_frequency": "weekday"}
    assert doc["results"]["seasonal"]["model"] == "seasonal_naive"
    assert "100%" in err  # the progress bar reached the end


@pytest.mark.parametrize("url", ["not-there.csv", None], ids=["url-ignored", "no-url"])
def test_submit_with_csv_then_watch_and_results_as_csv_and_json(
        cli: Run, csv_server: tuple[str, Path], tmp_path: Path, url: str | None) -> None:
    data = tmp_path / "upload.csv"
    synthetic_frame().to_csv(data, index=False)
    # The URL does not exist, or there is none (as in the webapp's examples): the uploaded CSV is used.
    config = config_file(tmp_path, f"{csv_server[0]}/{url}" if url else "", ["walk"])
    code, out, err = cli("submit", config, "--csv", str(data))
    rid = out.strip()
    assert code == 0 and rid and "\n" not in rid, err
    code, out, err = cli("watch", rid, "--timeout", str(TIMEOUT))
    assert code == 0, out + err
    assert f"request {rid}: done" in out and "walk" in out
    code, out, _ = cli("results", rid, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["request_id"] == rid
    code, out, _ = cli("results", rid, "--format", "csv")
    rows = [r for r in csv.DictReader(io.StringIO(out)) if r["kind"] == "forecast"]
    assert code == 0 and len(rows) == 6 and {r["series"] for r in rows} == {"walk"}
    assert [float(r["value"]) for r in rows] == pytest.approx(doc["results"]["walk"]["forecast"]["yhat"])
    assert rows[0]["model"] == doc["results"]["walk"]["model"]


def test_failed_request_exits_nonzero_and_says_why(cli: Run, csv_server: tuple[str, Path], tmp_path: Path) -> None:
    code, out, _ = cli("submit", config_file(tmp_path, f"{csv_server[0]}/missing.csv", ["walk"]), "--wait")
    assert code == 1
    assert "failed" in out.splitlines()[1] and "HTTP 404" in out
    code, out, _ = cli("submit", config_file(tmp_path, f"{csv_server[0]}/missing.csv", ["walk"]), "--wait",
                       "--output", "json")
    doc = json.loads(out)
    assert code == 1 and doc["status"] == "failed" and doc["failures"][0]["stage"] == "download"


def test_results_of_an_unknown_request_is_an_error(cli: Run) -> None:
    code, out, err = cli("results", f"never-{uuid.uuid4().hex[:6]}")
    assert code == 1 and out == "" and "no record" in err


def test_plain_json_without_key_from_a_bare_producer_is_listed_and_answered(
        cli: Run, stack: Stack, csv_server: tuple[str, Path]) -> None:
    title = f"keyless-{uuid.uuid4().hex[:8]}"
    config = make_config(served(csv_server, "keyless.csv"), ["trend"], models=FAST) | {"activity_title": title}
    bare = Producer({"bootstrap.servers": stack.bootstrap})  # any Kafka client: no Avro, no key
    bare.produce(CONFIGS.name, value=json.dumps(config).encode())
    assert bare.flush(10) == 0
    # The id the ingestion assigned shows up in `requests`, next to the config's title.
    rid, deadline = None, time.monotonic() + 60
    while rid is None and time.monotonic() < deadline:
        code, out, _ = cli("requests", "--since", "-10m", "--output", "json")
        assert code == 0
        rid = next((r["request_id"] for r in json.loads(out) if r["title"] == title), None)
    assert rid, f"{title} never listed"
    code, out, _ = cli("requests", "--since", "-10m")
    assert rid in out and title in out
    code, out, err = cli("watch", "--latest", "--since", "-10m", "--output", "json", "--timeout", str(TIMEOUT))
    doc = json.loads(out)
    assert code == 0 and doc["request_id"] == rid and doc["title"] == title, err
    assert doc["results"]["trend"]["model"] in {"naive", "seasonal_naive"}


def test_the_cli_and_the_gateway_give_the_same_results_document(
        cli: Run, csv_server: tuple[str, Path], tmp_path: Path, launch_gateway: Callable[..., Gateway]) -> None:
    """`results --format json` and `watch --output json` print what the gateway's results.json serves for the same
    request, key for key (one document, one plain())."""
    config = config_file(tmp_path, served(csv_server, "same-doc.csv"), ["seasonal", "trend"])
    code, out, err = cli("submit", config, "--wait", "--output", "json")
    assert code == 0, err
    watched = json.loads(out)
    rid = watched["request_id"]
    code, out, err = cli("results", rid, "--format", "json")
    assert code == 0, err
    printed = json.loads(out)
    gw = launch_gateway("gateway-same-doc")
    served_doc = requests.get(f"{gw.url}/api/requests/{rid}/results.json", timeout=30).json()
    assert served_doc["status"] == "done" and set(served_doc["results"]) == {"seasonal", "trend"}
    assert printed == served_doc
    assert watched == served_doc
