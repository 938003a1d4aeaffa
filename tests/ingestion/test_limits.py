"""The ingestion's request limits without a broker: past a limit, one fatal "limits" Failure and no Dataset; a
config past its limits is refused before anything is downloaded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forecasting.config import parse_config
from forecasting.limits import RequestLimits
from forecasting.series import from_wire
from ingestion.ingest import ingest
from schemas.topics import DATASETS, FAILURES, SERIES
from tests.plugins.frames import make_config, synthetic_frame
from timex_stream.runtime.fan_out import Outcome, accepted, fan_out

URL = "http://127.0.0.1:1/data.csv"  # never fetched: the fake fetch answers
COLUMNS = ["seasonal", "walk", "trend"]


class FakeFetch:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return synthetic_frame().to_csv(index=False).encode()


def run(config: dict[str, Any], limits: RequestLimits | None = None) -> tuple[Outcome, FakeFetch]:
    fetch = FakeFetch()
    request = {"request_id": "req-1", "config_json": json.dumps(config), "csv_data": None, "replay_of": None}
    return ingest(request, fetch, limits), fetch


def only_failure(out: Outcome) -> dict[str, Any]:
    (fatal,) = out.failures
    assert fatal["stage"] == "limits" and fatal["fatal"] and fatal["request_id"] == "req-1"
    assert out.planned == [] and out.stored == [] and out.datasets([]) == []
    assert not any(topic in (DATASETS, SERIES) for topic, _, _ in out.opening() + out.parts() + out.after())
    assert [topic for topic, _, _ in out.opening() + out.parts() + out.after()].count(FAILURES) == 1
    return fatal


def test_a_request_within_the_limits_is_planned() -> None:
    out, fetch = run(make_config(URL, COLUMNS))
    assert fetch.urls == [URL] and out.failures == []
    assert out.units == out.progress[-1]["units_total"] > 0
    # The config once, then each series once (one chunk each here), whatever the number of units.
    assert [r["series"] for _, r in out.stored] == [None, *[p.name for p in out.planned]]
    assert len(out.planned) == 3 and out.units > len(out.stored)


def test_the_hostile_config_is_refused_before_downloading() -> None:
    out, fetch = run(make_config(URL, COLUMNS, prediction_lags=1_000_000_000))
    assert fetch.urls == []
    assert only_failure(out)["message"] == ("model_parameters.prediction_lags: 1000000000 is over the limit of 10000 "
                                            "(TIMEX_MAX_PREDICTION_LAGS)")
    assert out.progress[0]["stage"] == "accepted" and out.progress[0]["title"] == "e2e"  # the request is listed


@pytest.mark.parametrize(("limits", "words"), [
    (RequestLimits(max_series=2), "the data have 3 series, over the limit of 2 series per request (TIMEX_MAX_SERIES)"),
    (RequestLimits(max_points_per_series=71), "has 72 points, over the limit of 71 points per series"),
    (RequestLimits(max_horizon_ratio=0.05), "6 is over the limit of 3 for series"),
    (RequestLimits(max_units_per_request=10), "over the limit of 10 units of work per request"),
    (RequestLimits(max_record_bytes=20_000), "bytes per record (TIMEX_MAX_RECORD_BYTES)"),
])
def test_data_past_a_limit_plan_no_unit(limits: RequestLimits, words: str) -> None:
    out, fetch = run(make_config(URL, COLUMNS), limits)
    assert fetch.urls == [URL]  # the data limits need the data
    assert words in only_failure(out)["message"]


def test_every_limit_is_reported_at_once() -> None:
    out, _ = run(make_config(URL, COLUMNS, test_values=20, prediction_lags=30),
                 RequestLimits(max_test_values=10, max_prediction_lags=20))
    message = only_failure(out)["message"]
    assert message.startswith("the request is over its limits:\n- model_parameters.prediction_lags: 30 is over")
    assert "\n- model_parameters.test_values: 20 is over the limit of 10 (TIMEX_MAX_TEST_VALUES)" in message


def test_a_replay_of_prepared_data_is_checked_too() -> None:
    """`timex-stream replay --topic datasets --set ...` plans through fan_out, without the download path."""
    parsed = parse_config(make_config(URL, ["walk"], prediction_lags=1_000_000_000))
    months = [f"2000-{m:02d}-01" for m in range(1, 13)]
    series = {"walk": from_wire(months, [float(m) for m in range(12)], "MS", name="walk")}
    out = fan_out(Outcome("req-1", progress=[accepted("req-1", parsed, "old")]), parsed.config, series, "old")
    assert "TIMEX_MAX_PREDICTION_LAGS" in only_failure(out)["message"]
