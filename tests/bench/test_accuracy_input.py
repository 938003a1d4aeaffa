"""bench/accuracy.py feeds the core each competition series' training values, no more, at its period."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from forecasting.config import parse_config
from forecasting.data import load_series
from forecasting.seasonality import season_length

_BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(_BENCH))  # accuracy.py imports its sibling modules as the bench scripts do
_SPEC = importlib.util.spec_from_file_location("accuracy_bench", _BENCH / "accuracy.py")
assert _SPEC and _SPEC.loader
accuracy = importlib.util.module_from_spec(_SPEC)
sys.modules["accuracy_bench"] = accuracy  # its dataclasses look their module up
_SPEC.loader.exec_module(accuracy)


def test_each_training_part_reaches_the_core_whole_and_at_its_period() -> None:
    tasks = accuracy.load_tasks("M3", "monthly", 200)
    assert len(tasks) == 8 and all(t.h == 18 and t.period == 12 for t in tasks)
    assert len({len(t.x) for t in tasks}) > 1  # different lengths share the CSV
    config = parse_config(accuracy.request_config({"models": "naive"}, 12, 18, "upload:x.csv")).config
    loaded = load_series(config, accuracy.series_csv(tasks, 12))
    assert not loaded.errors and season_length(loaded.frequency) == 12
    for t in tasks:
        assert np.array_equal(loaded.series[t.name].to_numpy(), t.x)
    assert config.model_parameters.test_values == config.model_parameters.prediction_lags == 18


def test_scores_fall_back_to_naive2_and_count_it() -> None:
    task = accuracy.Task("s", np.arange(1.0, 25.0), np.array([25.0, 26.0]), 1)
    naive2 = {"s": np.array([24.0, 24.0])}
    perfect = accuracy.score([task], {"s": np.array([25.0, 26.0])}, naive2)
    assert perfect["smape"] == 0 and perfect["owa"] == 0 and perfect["failed"] == 0
    missing = accuracy.score([task], {}, naive2)
    assert missing["owa"] == 1 and missing["failed"] == 1


def test_every_configuration_of_the_bench_parses_and_the_recommended_one_combines() -> None:
    import json

    spec = json.loads((_BENCH / "configs" / "accuracy.json").read_text())
    for configuration in spec["configurations"].values():
        parsed = parse_config(accuracy.request_config(configuration["model_parameters"], 12, 18, "upload:x.csv"))
        assert parsed.warnings == []
    recommended = spec["configurations"][spec["recommended"]]["model_parameters"]
    assert parse_config(accuracy.request_config(recommended, 12, 18, "u")).config.model_parameters.combination


def test_reference_rows_from_an_earlier_run_are_labelled_and_must_be_of_the_same_series(tmp_path: Path) -> None:
    import json

    import pytest

    earlier = {"dataset": "M3", "group": "monthly", "stride": 1, "series": 1428, "machine": {"at": "then"},
               "rows": [{"row": "system: x", "smape": 1.0}, {"row": "statsforecast AutoARIMA", "smape": 15.2},
                        {"row": accuracy.MEDIAN_ROW, "smape": 13.6}, {"row": "Naive2 (M4 guide)", "smape": 16.8}]}
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(earlier))
    rows = accuracy.earlier_references(path, "M3", "monthly", 1, 1428)
    assert [r["row"] for r in rows] == ["statsforecast AutoARIMA", accuracy.MEDIAN_ROW]
    assert all(r["source"] == "earlier run (earlier.json, then)" for r in rows)
    with pytest.raises(SystemExit, match="scored"):
        accuracy.earlier_references(path, "M3", "monthly", 4, 357)
    assert accuracy._reference_names("AutoETS, Theta") == ("AutoETS", "Theta") and accuracy._reference_names("") == ()
    with pytest.raises(SystemExit, match="unknown"):
        accuracy._reference_names("Prophet")



def test_the_cpu_count_includes_a_fork_server_pool() -> None:
    # The core's pool runs from multiprocessing's fork server (a grandchild of the bench), which
    # RUSAGE_CHILDREN never sees: before, the accuracy bench counted about 1 % of the pool's CPU.
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    work = range(5_000_000)
    t0 = time.process_time()
    sum(work)
    once = time.process_time() - t0  # the same work here, to compare with
    before = accuracy._cpu()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as pool:
        list(pool.map(sum, [work] * 4))
    assert accuracy._cpu() - before >= 3 * once
