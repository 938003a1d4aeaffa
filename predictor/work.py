"""Run the unit a Dataset record names and build its Prediction record. Runs in a pool process."""

from __future__ import annotations

import os
import socket
from typing import Any

from forecasting.config import config_from_json
from forecasting.series import from_wire
from forecasting.units import UnitResult, UnitSpec, refit_unit, run_unit
from forecasting.workers import init_worker
from timex_stream.processes import die_with_parent


def predict(dataset: dict[str, Any]) -> dict[str, Any]:
    """Dataset → Prediction. A model failure is carried in `error`, never raised."""
    config = config_from_json(dataset["config_json"])
    series = from_wire(dataset["timestamps"], dataset["values"], dataset["frequency"], name=dataset["series"])
    unit = dataset["unit"]
    spec = UnitSpec(unit["model"], unit["transformation"], unit["window"])
    # Validation units are scored only; the validator sends each model's best back for its final refit.
    result = (refit_unit(config, series, UnitResult(spec)) if unit["refit"]
              else run_unit(config, series, spec, with_forecast=False))
    return prediction_record(
        dataset, config.model_parameters.main_accuracy_estimator, error=result.error, metrics=dict(result.metrics),
        test_forecast=list(result.test_forecast), forecast=result.forecast.to_dict() if result.forecast else None,
        fit_seconds=result.fit_seconds, params={k: str(v) for k, v in result.params.items()})


def prediction_record(dataset: dict[str, Any], estimator: str = "mae", **result: Any) -> dict[str, Any]:
    """The Prediction for `dataset`'s unit; `result` holds what the unit produced (or just `error`)."""
    unit = dataset["unit"]
    return {
        "request_id": dataset["request_id"], "series": dataset["series"], "series_total": dataset["series_total"],
        "unit": unit, "error": None, "metrics": {}, "test_forecast": [], "forecast": None, "fit_seconds": 0.0,
        "params": {}, "main_accuracy_estimator": estimator, "config_json": dataset["config_json"],
        "frequency": dataset["frequency"],
        # Every unit carries the history: the validator plots it and, if units get lost, re-plans them.
        "history_timestamps": dataset["timestamps"],
        "history_values": dataset["values"],
        "worker": f"{socket.gethostname()}/{os.getpid()}",
        **result,
    }


def start_worker() -> None:
    """Pool initializer: die with the fork server (and so with the predictor), then the core's set-up."""
    die_with_parent()
    init_worker()
