"""The fault tests' judge of an answer finds every kind of difference from the fault-free one (no broker)."""

from __future__ import annotations

import copy

from .load import count_duplicates, differences, request_columns

EXPECTED = {"model": "seasonal_naive", "transformation": "none", "window": 18,
            "metrics": {"MAE": 2.5, "MAPE": 0.01},
            "forecast": {"timestamps": ["2013-01-01", "2013-02-01"], "yhat": [301.0, 302.5],
                         "lower_80": None, "upper_80": None, "lower_95": [290.0, 291.0], "upper_95": [312.0, 314.0]}}
ANSWER = {**copy.deepcopy(EXPECTED), "complete": True, "units_done": 4, "units_total": 4}


def _with(path: tuple, value: object) -> dict:
    answer = copy.deepcopy(ANSWER)
    target = answer
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return answer


def test_the_fault_free_answer_passes_and_every_change_is_found() -> None:
    assert differences(ANSWER, EXPECTED) == []
    assert differences(_with(("metrics", "MAE"), 2.5 + 1e-12), EXPECTED) == []  # within 1e-9
    for path, value in [(("model",), "naive"), (("window",), 30), (("metrics", "MAE"), 2.5 + 1e-6),
                        (("forecast", "yhat"), [301.0, 302.6]), (("forecast", "timestamps"), ["2013-01-01"]),
                        (("forecast", "lower_80"), [1.0, 2.0]), (("forecast", "upper_95"), None),
                        (("complete",), False), (("units_done",), 3)]:
        assert len(differences(_with(path, value), EXPECTED)) == 1, path
    assert differences({**ANSWER, "metrics": {"MAE": 2.5}}, EXPECTED)


def test_duplicates_count_extra_records_per_series() -> None:
    assert count_duplicates([("a", "s0"), ("a", "s1"), ("b", "s2")]) == 0
    assert count_duplicates([("a", "s0"), ("a", "s0"), ("a", "s0"), ("b", "s2"), ("b", "s2")]) == 3


def test_the_load_gives_each_request_its_own_series() -> None:
    plan = request_columns()
    series = [s for columns in plan for s in columns]
    assert len(plan) >= 100 and len(series) == len(set(series))
