"""The gateway answers a request past its limits with 400 naming the field, before anything reaches Kafka: the
config's limits for every submission, the data limits for an uploaded CSV; `?dry_run=1` answers the same."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
import requests

from tests.plugins.frames import make_config, synthetic_frame
from tests.plugins.gateways import Gateway

MAX_SERIES, MAX_POINTS = 2, 60


@pytest.fixture(scope="module")
def gateway(launch_gateway: Callable[..., Gateway]) -> Gateway:
    """Small data limits (set the way an operator would), the other limits at their defaults."""
    return launch_gateway("gateway-limits", TIMEX_MAX_SERIES=str(MAX_SERIES),
                          TIMEX_MAX_POINTS_PER_SERIES=str(MAX_POINTS))


def known_requests(gw: Gateway) -> int:
    return len(requests.get(f"{gw.url}/api/requests", params={"limit": 1000}, timeout=10).json()["requests"])


def post(gw: Gateway, dry_run: bool, **kwargs: Any) -> requests.Response:
    return requests.post(f"{gw.url}/api/requests", params={"dry_run": "1"} if dry_run else {}, timeout=30, **kwargs)


def upload(columns: list[str], rows: int) -> dict[str, Any]:
    config = make_config("", columns, models="naive")
    del config["input_parameters"]["source_data_url"]  # the upload is the data
    csv = synthetic_frame(rows)[["date", *columns]].to_csv(index=False).encode()
    return {"files": {"config": ("c.json", json.dumps(config)), "csv": ("data.csv", csv)}}


def assert_refused(gw: Gateway, field: str, error: str, **kwargs: Any) -> None:
    """400 naming the field, the same for a dry run, and nothing submitted."""
    before = known_requests(gw)
    answers = [post(gw, dry_run, **kwargs) for dry_run in (True, False)]
    for resp in answers:
        assert resp.status_code == 400, resp.text
        body = resp.json()
        assert body["field"] == field and body["error"].startswith(error), body
    assert answers[0].json() == answers[1].json()
    assert known_requests(gw) == before


def test_the_hostile_config_gets_400_naming_the_field(gateway: Gateway) -> None:
    config = make_config("http://127.0.0.1:1/data.csv", ["walk"], prediction_lags=1_000_000_000)
    assert_refused(gateway, "config.model_parameters.prediction_lags", "model_parameters.prediction_lags: "
                   "1000000000 is over the limit of 10000 (TIMEX_MAX_PREDICTION_LAGS)", json=config)
    resp = post(gateway, True, json=config)
    assert resp.json()["errors"] == [{"field": "model_parameters.prediction_lags",
                                      "message": "1000000000 is over the limit of 10000 (TIMEX_MAX_PREDICTION_LAGS)"}]


def test_an_upload_within_the_limits_is_valid(gateway: Gateway) -> None:
    resp = post(gateway, True, **upload(["walk", "trend"], MAX_POINTS))
    assert resp.status_code == 200 and resp.json()["valid"] is True, resp.text


def test_an_upload_with_too_many_series_gets_400(gateway: Gateway) -> None:
    assert_refused(gateway, "csv", "data: the data have 3 series, over the limit of 2 series per request "
                   "(TIMEX_MAX_SERIES)", **upload(["walk", "trend", "bumpy"], MAX_POINTS))


def test_an_upload_with_too_many_points_gets_400(gateway: Gateway) -> None:
    assert_refused(gateway, "csv", f"data: series 'walk' has {MAX_POINTS + 1} points, over the limit of "
                   f"{MAX_POINTS} points per series (TIMEX_MAX_POINTS_PER_SERIES)", **upload(["walk"], MAX_POINTS + 1))


def test_an_upload_the_horizon_outgrows_gets_400(gateway: Gateway) -> None:
    kwargs = upload(["walk"], 20)
    config = json.loads(kwargs["files"]["config"][1])
    config["model_parameters"]["prediction_lags"] = 201
    kwargs["files"]["config"] = ("c.json", json.dumps(config))
    assert_refused(gateway, "config.model_parameters.prediction_lags", "model_parameters.prediction_lags: 201 is "
                   "over the limit of 200 for series 'walk', 10 × its 20 points (TIMEX_MAX_HORIZON_RATIO)", **kwargs)


def test_data_that_do_not_load_are_left_to_the_ingestion(gateway: Gateway) -> None:
    """The gateway checks limits, not data: a CSV the core cannot read is accepted and failed by the ingestion
    as before (its message names what is wrong)."""
    kwargs = upload(["walk"], 30)
    kwargs["files"]["csv"] = ("data.csv", pd.DataFrame({"only": [1, 2]}).to_csv(index=False).encode())
    resp = post(gateway, True, **kwargs)
    assert resp.status_code == 200 and resp.json()["valid"] is True, resp.text
