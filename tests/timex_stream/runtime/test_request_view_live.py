"""A live request as RequestView folds it (broker-free): standing and stopped from progress, revisions kept per
series within the request's budget, idempotent, `?at=` lookups by the time each was written, and the keys of
revisions mapped to their request."""

from __future__ import annotations

from typing import Any

from schemas.keys import series_key
from schemas.topics import FORECAST_HISTORY, PROGRESS
from timex_stream.runtime import request_view
from timex_stream.runtime.request_view import RequestView, request_of


def _revision(series: str, number: int) -> dict[str, Any]:
    stamp = f"2026-01-{number:02d}T00:00:00"
    return {"request_id": "r1", "series": series, "revision": number, "last_timestamp": stamp, "points": 1,
            "forecast": {"timestamps": [], "yhat": []}, "model": "naive", "transformation": "none", "window": 0,
            "params": {}, "actual_timestamps": [stamp], "actual_values": [float(number)]}


def _progress(stage: str) -> dict[str, Any]:
    return {"request_id": "r1", "stage": stage, "message": "", "at": 5, "units_done": 0, "units_total": 0}


def test_a_live_request_from_standing_to_stopped() -> None:
    view = RequestView("r1")
    view.apply(PROGRESS.name, _progress("standing"))
    assert view.standing and view.live_state == "waiting" and view.live_summary()["series"] == {}
    for number in (3, 4, 4, 5):  # 4 twice: a recomputed revision changes nothing
        view.apply(FORECAST_HISTORY.name, _revision("sales", number), published_at=1000 + number)
    assert view.live_state == "live" and view.revised_at == 1005
    assert [r["revision"] for r in view.live["sales"].since(3)] == [4, 5]
    assert view.revisions()["sales"]["revision"] == 5
    assert view.revisions(at_ms=1004)["sales"]["revision"] == 4 and view.revisions(at_ms=1002) == {}
    assert list(view.live["sales"].actuals.values()) == [3.0, 4.0, 5.0]
    assert not view.settled  # not done: no answer yet
    view.apply(PROGRESS.name, _progress("stopped"))
    assert view.live_state == "stopped" and view.to_dict()["live"]["state"] == "stopped"


def test_revisions_kept_are_bounded_per_series_and_per_request(monkeypatch: Any) -> None:
    monkeypatch.setattr(request_view, "REVISIONS_KEPT", 4)
    monkeypatch.setattr(request_view, "REQUEST_REVISIONS", 6)
    monkeypatch.setattr(request_view, "ACTUALS_KEPT", 3)
    view = RequestView("r1")
    for number in range(1, 11):
        view.apply(FORECAST_HISTORY.name, _revision("a", number), published_at=number)
    assert view.live["a"].numbers == [7, 8, 9, 10] and len(view.live["a"].actuals) == 3
    view.apply(FORECAST_HISTORY.name, _revision("a", 2), published_at=11)  # older than what is kept: left out
    assert view.live["a"].numbers == [7, 8, 9, 10]
    for name in ("b", "c"):  # three series share 6: two each, as each series is next revised
        view.apply(FORECAST_HISTORY.name, _revision(name, 1), published_at=12)
    view.apply(FORECAST_HISTORY.name, _revision("a", 11), published_at=13)
    assert view.live["a"].numbers == [10, 11]


def test_revision_keys_map_to_their_request() -> None:
    assert request_of(FORECAST_HISTORY.name, series_key("r1", "a/b c").encode()) == "r1"
    assert request_of(PROGRESS.name, b"r1") == "r1" and request_of(PROGRESS.name, None) == ""
