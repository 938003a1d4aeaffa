"""The load of the fault tests and how it is judged.

Every request forecasts its own one or two series of one wide monthly CSV (served from 127.0.0.1), with the
cheap models, so answers differ per request and a mixed-up answer shows. The fault-free answer of every
series comes from the core pipeline in this process (`forecast_all` on all columns at once: a series'
answer does not depend on the other columns, and tests/validator/test_decide.py shows the stream's two
phases give the core's answer). A tally counts, per scenario, what was sent, answered, duplicated on the
best-models topic and lost.
"""

from __future__ import annotations

import json
import math
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecasting.config import parse_config
from forecasting.pipeline import forecast_all

N_KAFKA, N_GATEWAY = 100, 12  # requests per scenario through Kafka / through the gateway's HTTP API
POINTS, MODELS = 36, "naive,seasonal_naive"
TOLERANCE = 1e-9


def request_columns() -> list[list[str]]:
    """The series of each request of a scenario: every third request has two, the others one; none shared."""
    plan, j = [], 0
    for i in range(N_KAFKA + N_GATEWAY):
        width = 2 if i % 3 == 0 else 1
        plan.append([f"s{j + k}" for k in range(width)])
        j += width
    return plan


def wide_frame(n_series: int, seed: int = 13) -> pd.DataFrame:
    """Monthly series mixing a yearly wave, a random walk and noise in varying amounts: some are won by
    seasonal_naive, others by naive."""
    rng = np.random.default_rng(seed)
    t = np.arange(POINTS)
    columns: dict[str, Any] = {"date": pd.date_range("2010-01-01", periods=POINTS, freq="MS").strftime("%Y-%m-%d")}
    for j in range(n_series):
        wave, step = rng.uniform(0, 30), rng.uniform(0.5, 6)
        columns[f"s{j}"] = 300 + wave * np.sin(2 * np.pi * (t + j) / 12) + np.cumsum(rng.normal(0, step, POINTS))
    return pd.DataFrame(columns)


def config(url: str, columns: list[str], title: str = "faults", light: bool = False) -> dict[str, Any]:
    # delta 50 %: two training windows, so a series is 4 units + 2 final refits. `light`: one model and one
    # window (delta 100 %), 1 unit + 1 refit: three times the requests for the same units (the cluster tests).
    models, delta = ("naive", 100) if light else (MODELS, 50)
    return {
        "activity_title": title,
        "input_parameters": {"source_data_url": url, "columns_to_load_from_url": ",".join(["date", *columns]),
                             "datetime_column_name": "date", "index_column_name": "date", "frequency": "MS"},
        "model_parameters": {"models": models, "possible_transformations": "none", "main_accuracy_estimator": "mae",
                             "test_values": 6, "delta_training_percentage": delta, "prediction_lags": 4},
    }


def reference(url: str, csv: bytes, columns: list[str], light: bool = False) -> dict[str, dict[str, Any]]:
    """The fault-free answer of every series: model, transformation, window, metrics and forecast."""
    choices = forecast_all(parse_config(config(url, columns, light=light)).config, csv, max_workers=2)
    out = {}
    for name, choice in choices.items():
        assert choice.best is not None and choice.best.forecast is not None, (name, choice.data_error)
        spec = choice.best.spec
        out[name] = {"model": spec.model, "transformation": spec.transformation, "window": spec.window,
                     "metrics": dict(choice.best.metrics), "forecast": choice.best.forecast.to_dict()}
    return out


def differences(answer: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """How a BestModel record (from Kafka or the gateway's JSON) differs from the fault-free answer."""
    diffs = [f"{k}: {answer.get(k)!r} != {expected[k]!r}" for k in ("model", "transformation", "window")
             if answer.get(k) != expected[k]]
    if not answer.get("complete") or answer.get("units_done") != answer.get("units_total"):
        diffs.append(f"incomplete: {answer.get('units_done')}/{answer.get('units_total')} units")
    if set(answer.get("metrics") or {}) != set(expected["metrics"]):
        diffs.append(f"metrics {sorted(answer.get('metrics') or {})} != {sorted(expected['metrics'])}")
    else:
        diffs += [f"metric {k}: {v} != {expected['metrics'][k]}" for k, v in answer["metrics"].items()
                  if not _close(v, expected["metrics"][k])]
    forecast, want = answer.get("forecast") or {}, expected["forecast"]
    if forecast.get("timestamps") != want["timestamps"]:
        diffs.append(f"forecast timestamps {forecast.get('timestamps')} != {want['timestamps']}")
    for key in ("yhat", "lower_80", "upper_80", "lower_95", "upper_95"):
        got, exp = forecast.get(key), want.get(key)
        if (got is None) != (exp is None) or (got is not None and (
                len(got) != len(exp) or not all(_close(a, b) for a, b in zip(got, exp, strict=True)))):
            diffs.append(f"forecast {key}: {got} != {exp}")
    return diffs


def _close(a: float | None, b: float) -> bool:
    if a is None or not math.isfinite(b):  # the gateway's JSON carries NaN/inf as null
        return a is None or (math.isnan(a) and math.isnan(b)) or a == b
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def submit_to_gateway(gateway_url: str, body: dict[str, Any], token: str | None) -> str:
    req = urllib.request.Request(f"{gateway_url}/api/requests", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **_auth(token)})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - our own loopback gateway
        assert resp.status == 202, resp.status
        return json.loads(resp.read())["request_id"]


def gateway_view(gateway_url: str, rid: str, token: str | None) -> dict[str, Any] | None:
    req = urllib.request.Request(f"{gateway_url}/api/requests/{rid}", headers=_auth(token))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return json.loads(resp.read())
    except OSError:  # 404 (not read yet), or the gateway is restarting
        return None


@dataclass
class Tally:
    scenario: str
    sent: int = 0
    in_flight: int = 0  # sent and not answered when the fault hit
    answered: int = 0  # done, every series answered, every answer equal to the fault-free one
    duplicated: int = 0  # extra best-models records for an already answered series
    lost: int = 0  # no final answer within the scenario's time
    resent: int = 0  # times the validator sent a series' units again, thinking them lost (TIMEX_VALIDATOR_STALL_S)
    seconds: float = 0.0
    at_fault: str = ""  # how far the work was when the fault hit
    wrong: list[str] = field(default_factory=list)

    HEADER = (f"{'scenario':<24} {'sent':>4} {'in flight':>9} {'answered':>8} {'duplicated':>10} {'lost':>4} "
              f"{'re-sent':>7} {'seconds':>7}  when the fault hit")

    def row(self) -> str:
        return (f"{self.scenario:<24} {self.sent:>4} {self.in_flight:>9} {self.answered:>8} {self.duplicated:>10} "
                f"{self.lost:>4} {self.resent:>7} {self.seconds:>7.1f}  {self.at_fault}")


def count_duplicates(series_of_records: list[tuple[str, str]]) -> int:
    """(request id, series) of every best-models record → records beyond the first per series."""
    return sum(n - 1 for n in Counter(series_of_records).values())
