"""Replay on the real broker: a time range of `configs` re-forecasts exactly the configs in it (with
lineage and `--set` edits); replaying `datasets` re-runs predictions on the same data with no download."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from confluent_kafka import Producer, TopicPartition

from schemas.topics import CONFIGS
from tests.plugins.cli import FAST, TIMEOUT, Run, boundary, iso
from tests.plugins.frames import make_config, synthetic_frame
from tests.plugins.gateways import Gateway
from timex_stream.runtime import lookup
from timex_stream.runtime.history import parse_time, read_range
from timex_stream.runtime.intake import derived_request_id, position_of, read_request
from timex_stream.runtime.kafka import consumer
from timex_stream.runtime.records import history_of, now_ms
from timex_stream.runtime.request_index import read_index
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.replay import apply_sets
from timex_stream.tools.stack import Stack


def configs_end_offsets(bootstrap: str) -> int:
    cons = consumer(bootstrap, f"t-{uuid.uuid4().hex[:6]}")
    try:
        return sum(cons.get_watermark_offsets(TopicPartition(CONFIGS.name, p), timeout=10)[1] for p in range(4))
    finally:
        cons.close()


def test_parse_time_absolute_relative_and_offsets() -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    ms = int(now.timestamp() * 1000)
    assert parse_time("2026-11-24T12:00", now) == ms  # no offset: UTC
    assert parse_time("2026-11-24T14:00+02:00", now) == ms
    assert parse_time("2026-11-24", now) == ms - 12 * 3600_000
    assert parse_time("-2h", now) == ms - 2 * 3600_000
    assert parse_time("-30m", now) == ms - 30 * 60_000
    assert parse_time("-7d", now) == ms - 7 * 86400_000
    assert parse_time("now", now) == ms
    with pytest.raises(ValueError, match="not a time"):
        parse_time("last tuesday", now)


def test_apply_sets_edits_dotted_paths_and_keeps_strings() -> None:
    config = {"model_parameters": {"models": "naive", "test_values": 6}}
    edited = apply_sets(config, ["model_parameters.models=arima,fbprophet", "input_parameters.frequency=D"])
    assert edited == {"model_parameters": {"models": "arima,fbprophet", "test_values": 6},
                      "input_parameters": {"frequency": "D"}}
    assert config["model_parameters"]["models"] == "naive"  # the original is untouched
    with pytest.raises(ValueError, match="dotted.path=value"):
        apply_sets(config, ["model_parameters.models"])
    with pytest.raises(ValueError, match="not a section"):
        apply_sets(config, ["model_parameters.models.first=x"])


def test_replay_configs_of_a_time_range_reforecasts_exactly_those_with_lineage(
        cli: Run, stack: Stack, producer_: Producer, csv_server: tuple[str, Path]) -> None:
    base, root = csv_server
    synthetic_frame().to_csv(root / "replay.csv", index=False)
    config = make_config(f"{base}/replay.csv", ["trend"], models=FAST)
    before = submit(producer_, config)
    start = boundary()
    inside = [submit(producer_, config | {"activity_title": "inside-avro"}, owner="alice")]
    plain_id = f"plain-{uuid.uuid4().hex[:8]}"  # plain JSON configs are replayed too, with a key or without
    producer_.produce(CONFIGS.name, key=plain_id.encode(), value=json.dumps(config).encode())
    delivered = []
    producer_.produce(CONFIGS.name, value=json.dumps(config | {"activity_title": "no key"}).encode(),
                      on_delivery=lambda err, msg: delivered.append(msg))
    assert producer_.flush(10) == 0
    # A key-less config's id is derived from where it sits, as the ingestion derived it: lineage works too.
    where = delivered[0]
    inside += [plain_id, derived_request_id(position_of(where))]
    end = boundary()
    after = submit(producer_, config)

    offsets = configs_end_offsets(stack.bootstrap)
    code, out, err = cli("replay", "--from", iso(start), "--to", iso(end), "--dry-run", "--output", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert sorted(r["original_id"] for r in listed) == sorted(inside)
    assert all(r["new_id"] is None for r in listed)
    assert configs_end_offsets(stack.bootstrap) == offsets, "a dry run produced something"

    code, out, err = cli("replay", "--from", iso(start), "--to", iso(end), "--set", "model_parameters.models=naive",
                         "--output", "json")
    assert code == 0, err
    lineage = {r["new_id"]: r["original_id"] for r in json.loads(out)}
    assert sorted(map(str, lineage.values())) == sorted(map(str, inside)) and before not in lineage.values()
    assert after not in lineage.values()
    views = follow(stack.bootstrap, list(lineage), TIMEOUT)
    for new_id, view in views.items():
        assert view.status == "done" and view.replay_of == lineage[new_id], view.to_dict()
        assert {row["model"] for row in view.results["trend"]["comparison"]} == {"naive"}  # --set applied
    owned = next(new for new, old in lineage.items() if old == inside[0])
    record = next(read_request(m.key(), m.value(), position_of(m)) for m in read_range(stack.bootstrap, CONFIGS.name)
                  if m.key() == owned.encode())
    assert record["owner"] == "alice"  # the original's gateway user sees it too


def test_replay_datasets_reruns_on_the_same_data_without_downloading(
        cli: Run, stack: Stack, producer_: Producer, csv_server: tuple[str, Path]) -> None:
    base, root = csv_server
    synthetic_frame().to_csv(root / "once.csv", index=False)
    start = boundary()
    original = submit(producer_, make_config(f"{base}/once.csv", ["seasonal", "walk"], models=FAST))
    old = follow(stack.bootstrap, [original], TIMEOUT)[original]
    assert old.status == "done"
    (root / "once.csv").unlink()  # any download of it now fails with HTTP 404

    code, out, err = cli("replay", "--topic", "datasets", "--from", iso(start), "--request", original,
                         "--set", "model_parameters.models=naive", "--output", "json")
    assert code == 0, err
    [replayed] = json.loads(out)
    assert replayed["original_id"] == original and replayed["series"] == ["seasonal", "walk"]
    new = follow(stack.bootstrap, [replayed["new_id"]], TIMEOUT)[replayed["new_id"]]
    assert new.status == "done" and new.replay_of == original and new.failures == [], new.to_dict()
    assert set(new.results) == {"seasonal", "walk"}
    for name, best in new.results.items():
        assert best["model"] == "naive" and {r["model"] for r in best["comparison"]} == {"naive"}
        assert history_of(best).wire() == history_of(old.results[name]).wire()
    # And nothing went through `configs` (where the ingestion would have tried the download).
    code, _, err = cli("replay", "--from", iso(start), "--request", replayed["new_id"], "--dry-run")
    assert code == 1 and "nothing on 'configs'" in err


def test_a_datasets_replay_is_indexed_so_the_gateway_and_results_find_it_later(
        cli: Run, stack: Stack, producer_: Producer, csv_server: tuple[str, Path],
        launch_gateway: Callable[..., Gateway], monkeypatch: pytest.MonkeyPatch) -> None:
    # Look-backs shortened from minutes to seconds: a lookup that has to guess when an un-indexed request
    # began (now - the look-back) then starts after every record of it once a few seconds have passed.
    monkeypatch.setattr(lookup, "NOT_INDEXED_LOOKBACK_MS", 2_000)
    monkeypatch.setattr(lookup, "LOOKBACK_MS", 2_000)
    base, root = csv_server
    synthetic_frame().to_csv(root / "indexed.csv", index=False)
    start = boundary()
    # An owner no other test logs in as (a user's listing elsewhere stays theirs alone).
    original = submit(producer_, make_config(f"{base}/indexed.csv", ["seasonal"], models=FAST), owner="dave")
    assert follow(stack.bootstrap, [original], TIMEOUT)[original].status == "done"

    code, out, err = cli("replay", "--topic", "datasets", "--from", iso(start), "--request", original,
                         "--set", "model_parameters.models=naive", "--output", "json")
    assert code == 0, err
    new_id = json.loads(out)[0]["new_id"]
    view = follow(stack.bootstrap, [new_id], TIMEOUT)[new_id]
    assert view.status == "done" and view.last_at is not None

    # Past both look-backs since its last record: only the index says where the request is.
    while now_ms() < view.last_at + 5_000:  # the time passing is the thing under test
        time.sleep(0.2)
    code, out, err = cli("results", new_id, "--format", "json")
    assert code == 0, err
    found = json.loads(out)
    assert found["status"] == "done" and found["replay_of"] == original, found

    gw = launch_gateway("gateway-replayed")  # started after the replay: it knows the request from the index only
    answer = requests.get(f"{gw.url}/api/requests/{new_id}", timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["done"] and answer.json()["replay_of"] == original and answer.json()["owner"] == "dave"
    listed = requests.get(f"{gw.url}/api/requests", params={"limit": 1000}, timeout=30).json()["requests"]
    assert new_id in {row["request_id"] for row in listed}
    again = requests.post(f"{gw.url}/api/requests/{new_id}/reforecast", timeout=30)  # no configs record to re-read
    assert again.status_code == 409 and "re-forecast the original" in again.json()["error"], again.text
    # Its index entry: the original's owner (that gateway user sees it), and a start before all its answers.
    entry = read_index(stack.bootstrap, {new_id})[new_id]
    assert entry["replay_of"] == original and entry["origin"] == "replay" and entry["owner"] == "dave"
    assert entry["configs_at"] <= view.first_at
