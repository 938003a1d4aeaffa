"""The live page's charts as pure functions of the gateway's JSON (webapp.live): drawn once from the kept
revisions, then patched with only what is new; model changes are marked with why."""

from __future__ import annotations

from typing import Any

from webapp.live import ACTUALS, FORECAST, MODEL_CHANGES, REALISED, SeriesState, live_figure, live_patch


def _revision(number: int, model: str, actuals: dict[str, float], switched: dict[str, Any] | None = None,
              error: float | None = None) -> dict[str, Any]:
    nxt = f"2026-01-{number + 1:02d}T00:00:00"
    return {"revision": number, "model": model, "last_timestamp": max(actuals), "published_at": number,
            "actual_timestamps": list(actuals), "actual_values": list(actuals.values()),
            "forecast": {"timestamps": [nxt], "yhat": [float(number)], "lower_80": [number - 1.0],
                         "upper_80": [number + 1.0], "lower_95": None, "upper_95": None},
            "accuracy": {"estimator": "mae", "error": error, "threshold": 5.0} if error is not None else None,
            "switched": switched}


BEST = {"model": "seasonal_naive", "history_timestamps": ["2026-01-01T00:00:00.000000", "2026-01-02T00:00:00.000000"],
        "history_values": [1.0, 2.0], "main_accuracy_estimator": "mae"}


def test_drawn_from_the_history_and_the_kept_revisions_then_patched_with_what_is_new() -> None:
    first = _revision(3, "seasonal_naive", {"2026-01-03T00:00:00": 3.0})
    fig, errors, state = live_figure("sales", BEST, [first])
    assert list(fig.data[ACTUALS].x) == [*BEST["history_timestamps"], "2026-01-03T00:00:00"]
    assert list(fig.data[FORECAST].y) == [3.0] and list(fig.data[REALISED].x) == ["2026-01-04T00:00:00"]
    assert list(fig.data[MODEL_CHANGES].x) == [] and list(errors.data[0].x) == []

    # The provisional day 3 restated, day 4 new; then a switch, with why.
    second = _revision(4, "seasonal_naive", {"2026-01-03T00:00:00": 3.5, "2026-01-04T00:00:00": 4.0}, error=2.0)
    why = {"reason": "drift", "triggered_at": 5, "from_model": "seasonal_naive", "old_error": 9.0, "new_error": 1.5,
           "rolling_error": 8.0}
    third = _revision(6, "naive", {"2026-01-05T00:00:00": 5.0, "2026-01-06T00:00:00": 6.0}, switched=why, error=1.0)
    patches = live_patch(state, [first, second, third])  # `first` again: already shown, left out
    assert patches is not None
    chart, error_chart = (p.to_plotly_json()["operations"] for p in patches)
    extended = {tuple(op["location"]): op["params"]["value"] for op in chart if op["operation"] == "Extend"}
    assert extended[("data", ACTUALS, "x")] == ["2026-01-04T00:00:00", "2026-01-05T00:00:00", "2026-01-06T00:00:00"]
    assert extended[("data", REALISED, "y")] == [4.0, 6.0]
    assert extended[("data", MODEL_CHANGES, "text")] == [
        "model changed: seasonal_naive → naive (drift; on the latest window: 9 → 1.5), revision 6"]
    assigned = {tuple(op["location"]): op["params"]["value"] for op in chart if op["operation"] == "Assign"}
    assert assigned[("data", FORECAST, "y")] == [6.0] and assigned[("data", FORECAST, "name")] == "forecast (naive)"
    errors_added = {tuple(op["location"]): op["params"]["value"] for op in error_chart}
    assert errors_added[("data", 0, "y")] == [2.0, 1.0] and errors_added[("data", 1, "y")] == [5.0, 5.0]
    assert errors_added[("data", 2, "y")] == [8.0]
    assert state.as_doc() == {"revision": 6, "last_actual": "2026-01-06T00:00:00", "model": "naive",
                              "switched_at": 5}
    assert live_patch(SeriesState(state.as_doc()), [third]) is None  # nothing new
    # `switched` stays on every later revision of the re-selected model: no second marker for the same switch
    fourth = _revision(7, "naive", {"2026-01-07T00:00:00": 7.0}, switched=why, error=1.0)
    later = live_patch(SeriesState(state.as_doc()), [fourth])
    assert later is not None
    ops = later[0].to_plotly_json()["operations"]
    assert not [op for op in ops if op["location"][:2] == ["data", MODEL_CHANGES]]
