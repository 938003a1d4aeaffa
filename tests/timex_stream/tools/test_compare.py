"""`timex-stream compare OLD NEW`: both best models per series and the old forecast's real error where the new
request's data covers the old horizon, checked against errors computed here from the known data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from tests.plugins.cli import FAST, TIMEOUT, Run, boundary, iso
from tests.plugins.frames import make_config, synthetic_frame
from timex_stream.runtime.records import history_of
from timex_stream.runtime.submit import submit
from timex_stream.tools.compare import compare_series
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack


def best(model: str, stamps: list[str], yhat: list[float], history: tuple[list[str], list[float]]) -> dict:
    return {"model": model, "main_accuracy_estimator": "mae", "metrics": {"MAE": 1.5},
            "forecast": {"timestamps": stamps, "yhat": yhat},
            "history_timestamps": history[0], "history_values": history[1]}


def test_old_forecast_is_scored_on_the_points_the_new_history_covers() -> None:
    old = best("naive", ["2001-04-01T00:00:00.000000", "2001-05-01T00:00:00.000000", "2001-06-01T00:00:00.000000"],
               [10.0, 10.0, 10.0], (["2001-03-01T00:00:00.000000"], [10.0]))
    # The new history ends inside the old horizon (2 of its 3 points), written without microseconds.
    new = best("theta", ["2001-06-01T00:00:00"], [9.0],
               (["2001-03-01T00:00:00", "2001-04-01T00:00:00", "2001-05-01T00:00:00"], [10.0, 12.0, 5.0]))
    row = compare_series("s", old, new)
    assert (row.old_model, row.new_model, row.estimator, row.horizon, row.covered) == ("naive", "theta", "MAE", 3, 2)
    assert row.realized["MAE"] == pytest.approx((2 + 5) / 2)
    assert row.realized["MAPE"] == pytest.approx((2 / 12 + 5 / 5) / 2 * 100)
    assert compare_series("s", old, None).covered == 0 and compare_series("s", None, new).old_model is None


def test_compare_replay_on_longer_data_gives_the_old_forecasts_actual_error(
        cli: Run, stack: Stack, producer_: Producer, csv_server: tuple[str, Path]) -> None:
    base, root = csv_server
    frame = synthetic_frame(72)
    frame.iloc[:60].to_csv(root / "growing.csv", index=False)  # data up to month 60
    start = boundary()
    old_id = submit(producer_, make_config(f"{base}/growing.csv", ["seasonal", "trend"], models=FAST))
    old = follow(stack.bootstrap, [old_id], TIMEOUT)[old_id]
    assert old.status == "done"
    frame.to_csv(root / "growing.csv", index=False)  # 12 more months arrived
    code, out, err = cli("replay", "--from", iso(start), "--request", old_id, "--output", "json")
    assert code == 0, err
    [replayed] = json.loads(out)
    new_id = replayed["new_id"]
    new = follow(stack.bootstrap, [new_id], TIMEOUT)[new_id]
    assert new.status == "done" and len(history_of(new.results["trend"])) == 72

    code, out, err = cli("compare", old_id, new_id, "--output", "json")
    assert code == 0, err
    rows = {r["series"]: r for r in json.loads(out)["series"]}
    assert set(rows) == {"seasonal", "trend"}
    for name, row in rows.items():
        assert row["old_model"] == old.results[name]["model"] and row["new_model"] == new.results[name]["model"]
        assert row["old_score"] == pytest.approx(old.results[name]["metrics"]["MAE"])
        assert row["horizon"] == row["covered"] == 6  # months 61..66 are in the new data
        actual = frame[name].to_numpy()[60:66]
        yhat = np.array(old.results[name]["forecast"]["yhat"])
        assert row["realized"]["MAE"] == pytest.approx(np.mean(np.abs(actual - yhat)))
        assert row["realized"]["MAPE"] == pytest.approx(np.mean(np.abs(actual - yhat) / np.abs(actual)) * 100)
    code, out, _ = cli("compare", old_id, new_id)
    assert code == 0 and f"{new_id} is a replay of {old_id}" in out and out.count("on 6/6 points") == 2
