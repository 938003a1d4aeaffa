"""A valid sample of every top-level Avro record (and the pieces they are made of). A plugin (tests/conftest.py
`pytest_plugins`): the codec and lookup tests share them."""

from __future__ import annotations

import datetime as dt
import struct

NOW = dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)
OLD_UNIT = {"model": "arima", "transformation": "log", "window": 40, "index": 3, "total": 12, "refit": False}
UNIT = {**OLD_UNIT, "regressors": ["temperature"], "historical_end": 0}
FORECAST = {"timestamps": ["1700-01-01T00:00:00", "1701-01-01T00:00:00"], "yhat": [1.5, 2.5],
            "lower_80": [1.0, 2.0], "upper_80": [2.0, 3.0], "lower_95": None, "upper_95": None}
OLD_REF = {"partition": 3, "config_offset": 17, "offsets": [18, 19], "points": 120_000}
REF = {**OLD_REF, "regressors": [{"name": "temperature", "offsets": [16]}], "historical_from": 0}
HISTORICAL = {"initial_index": 8, "delta": 2, "best_model": "arima",
              "models": {"arima": {"timestamps": ["2020-01-01T00:00:00", "2020-02-01T00:00:00"],
                                   "forecast": [1.0, None], "actual": [1.5, 2.0],
                                   "metrics": {"mae": 0.5, "rmse": 0.5}, "error": "failed at one step",
                                   "steps": [{"points_known": 9, "transformation": "log_modified",
                                              "regressors": ["temperature"]}]}}}
METRICS = {"MAE": 0.5, "MSE": 0.25, "RMSE": 0.5, "AM": 0.1, "SD": 0.2}

ACCURACY = {"estimator": "mae", "window": 50, "scored": 9, "error": 1.25, "mae": 1.25, "validation_error": 1.0,
            "threshold": 1.5, "over": 0, "steps": [{"step": 1, "count": 9, "error": 1.0, "mae": 1.0},
                                                   {"step": 2, "count": 8, "error": None, "mae": None}]}
SWITCH = {"reason": "drift", "triggered_at": 40, "from_model": "naive", "from_transformation": "none", "from_window": 0,
          "old_error": 4.0, "new_error": 1.0, "rolling_error": 3.5}

SAMPLES: dict[str, dict] = {
    "ForecastRequest": {"request_id": "r1", "submitted_at": NOW, "origin": "cli", "config_json": '{"a": 1}',
                        "csv_data": b"date,x\n2020-01-01,1\n", "replay_of": "r0", "owner": "alice"},
    "Dataset": {"request_id": "r1", "series": "x", "series_total": 2, "unit": UNIT, "more": [{**UNIT, "index": 4}],
                "ref": REF, "created_at": NOW},
    "SeriesPart": {"request_id": "r1", "series": "x", "config_json": None, "series_total": 2, "chunk": 1,
                   "chunks": 3, "points": 120_000, "frequency": "YS-JAN", "start_us": -8_520_336_000_000_000,
                   "timestamps_us": None, "values": b"\x00" * 16, "created_at": NOW, "xcorr_json": None},
    "Prediction": {"request_id": "r1", "series": "x", "series_total": 2, "unit": UNIT, "error": None,
                   "metrics": METRICS, "test_forecast": [1.0, 2.0], "forecast": FORECAST, "fit_seconds": 0.01,
                   "params": {"order": "(1,1,0)"}, "main_accuracy_estimator": "MAE", "ref": REF,
                   "history_timestamps": ["2020-01-01T00:00:00"], "history_values": [3.0], "worker": "h/1",
                   "more": [{"unit": {**UNIT, "index": 4}, "error": "failed", "metrics": {}, "test_forecast": [],
                             "forecast": None, "fit_seconds": 0.5, "params": {}}]},
    "BestModel": {"request_id": "r1", "series": "x", "series_total": 2, "model": "arima", "transformation": "log",
                  "window": 40, "main_accuracy_estimator": "MAE", "metrics": METRICS, "forecast": FORECAST,
                  "per_model": {"arima": FORECAST},
                  "comparison": [{"model": "arima", "transformation": "log", "window": 40, "metrics": METRICS,
                                  "fit_seconds": 0.2, "params": {}, "error": None, "best_of_model": True}],
                  "history_timestamps": ["2020-01-01T00:00:00"], "history_values": [3.0],
                  "history_timestamps_us": (1_577_836_800 * 10**6).to_bytes(8, "little"),
                  "history_values_f64": struct.pack("<d", 3.0), "history_points": 1, "series_ref": REF,
                  "units_done": 12, "units_total": 12, "complete": True, "historical_predictions": HISTORICAL,
                  "decided_at": NOW,
                  "xcorr": {"max_lags": 1, "threshold": 0.5, "modes": {"pearson": {"y": [0.1, 0.2, 0.9]}},
                            "lags": {"pearson": [-1, 0, 1]}, "regressors": ["y"]},
                  "univariate": {"model": "arima", "transformation": "log", "metrics": METRICS, "forecast": FORECAST,
                                 "regressors": []},
                  "multivariate": {"model": "arima", "transformation": "log", "metrics": METRICS,
                                   "forecast": FORECAST, "regressors": ["y"]},
                  "kept": "multivariate"},
    "Failure": {"request_id": "r1", "stage": "config", "message": "model_parameters.models: unknown model 'x'",
                "series": None, "model": "x", "fatal": True, "detail": None, "occurred_at": NOW},
    "Progress": {"request_id": "r1", "stage": "accepted", "message": "", "series": None,
                 "series_names": ["x", "y"], "units_done": 0, "units_total": 24, "current_best": None,
                 "title": "demo", "replay_of": None, "visualization": {"language": "it", "xcorr_graph_threshold": 0.7,
                                                                          "box_plot_frequency": "3M",
                                                                          "aggregate_box_plot_frequency": "month"},
                 "at": NOW},
    "RequestIndex": {"request_id": "r1", "owner": "alice", "title": "demo", "replay_of": None, "origin": "gateway",
                     "has_csv": False, "submitted_at": NOW, "configs_partition": 2, "configs_offset": 17,
                     "configs_at": NOW},
    "Observation": {"series": "sales", "timestamp": NOW, "value": 3.5},
    "StandingRequest": {"request_id": "r1", "config_json": '{"a": 1}', "owner": "alice", "status": "active",
                        "history_csv": b"date,x\n2020-01-01,1\n", "at": NOW},
    "ForecastRevision": {"request_id": "r1", "series": "sales", "revision": 51, "last_timestamp": "2026-01-01T00:00:00",
                         "points": 2, "forecast": FORECAST, "model": "arima", "transformation": "none", "window": 0,
                         "params": {"order": "(1,1,0)"}, "accuracy": ACCURACY, "switched": SWITCH,
                         "selected_at": 40, "actual_timestamps": ["2025-12-31T00:00:00", "2026-01-01T00:00:00"],
                         "actual_values": [3.0, 4.5]},
    "Accuracy": {"request_id": "r1", "series": "sales", "revision": 51, "last_timestamp": "2026-01-01T00:00:00",
                 "model": "arima", "transformation": "none", "window": 0, "selected_at": 40, "accuracy": ACCURACY,
                 "switched": None},
}
