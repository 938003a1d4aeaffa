"""Runs TIMEX 1.2.3 on one config and prints ONE JSON line: ingest and predict wall seconds, CPU seconds, and
per series the best model and the best test MAE of every model; with xcorr_parameters the extra regressors
its rule picks, with historical_prediction_parameters each model's past forecasts and their MAE/RMSE, and per
step (the last date known) the transformation and the extra regressors of the result each model's forecast
came from (`historical_steps`: read from TIMEX's own ModelResult.characteristics at each step).
Run it with the reference venv, never the
project's (TIMEX needs Python < 3.11): `PYTHONPATH=DIR/stub DIR/venv/bin/python bench/run_timex.py CONFIG`,
DIR built by the shared reference script (timex-reference.sh; README "Performance"). bench/compute.py does.

`CONFIG --part K` runs a part of it, so that the parts of a long historical run can go side by side (each
step of TIMEX's historical predictions is a whole run on the data known then, independent of the others):
`--part final` the config without historical predictions (the test errors, the regressors), `--part K` only
historical step K (0-based; TIMEX's own loop, started at that step and stopped once it is saved). bench/parity.py
merges the parts' lines (`--timex-json` with several files).
"""

import json
import logging
import os
import pickle
import resource
import sys
import tempfile
import time
import warnings

import pandas as pd
from timexseries.data_ingestion import ingest_timeseries
from timexseries.data_prediction import pipeline
from timexseries.data_prediction.pipeline import create_timeseries_containers

# TIMEX's name for a transformation (str of its Transformation) → the config's keyword.
_TRANSFORMATIONS = {"none": "none", "Log": "log", "modified Log": "log_modified", "Yeo-Johnson": "yeo_johnson"}
_steps = {}  # series → model → [{end, transformation, regressors}], one entry per historical step
_best_predictions = pipeline.get_best_predictions
_calls = []  # one per get_best_predictions call
ONE_STEP = False  # --part K: stop at the call after the first (the step's results are saved by then)


class StepDone(Exception):
    pass


def _recording_best_predictions(available_data, param_config):
    """TIMEX's get_best_predictions, noting which transformation and regressors each model's result used."""
    _calls.append(available_data.index[-1])
    if ONE_STEP and len(_calls) > 1:
        raise StepDone
    containers = _best_predictions(available_data, param_config)
    end = str(available_data.index[-1])
    for c in containers:
        for model, result in (c.models or {}).items():
            ch = result.characteristics
            tr = str(ch.get("transformation"))
            regs = [r.strip() for r in str(ch.get("extra_regressors") or "").split(",") if r.strip()]
            _steps.setdefault(c.timeseries_data.columns[0], {}).setdefault(model, []).append(
                {"end": end, "transformation": _TRANSFORMATIONS.get(tr, tr), "regressors": regs})
    return containers


pipeline.get_best_predictions = _recording_best_predictions  # compute_historical_predictions calls it by name

warnings.simplefilter("ignore")
logging.basicConfig(level=logging.WARNING)
with open(sys.argv[1]) as fh:
    cfg = json.load(fh)
part = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--part" else None
t0, c0 = time.time(), time.process_time()
df = ingest_timeseries(cfg)
hp = cfg.get("historical_prediction_parameters")
if part == "final":
    cfg.pop("historical_prediction_parameters", None)
elif part is not None:
    ONE_STEP = True
    first = df.index.searchsorted(pd.Timestamp(hp["initial_index"]))
    hp["initial_index"] = str(df.index[first + int(part) * hp.get("delta", 1)].date())
    hp["save_path"] = os.path.join(tempfile.mkdtemp(), "historical.pkl")
t1 = time.time()
try:
    containers = create_timeseries_containers(df, cfg)
except StepDone:
    containers = []
t2 = time.time()
try:  # joblib's loky workers (TIMEX's lstm runs there) count as children only once they have exited
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
except ImportError:
    pass
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
out = {"config": cfg["activity_title"], "ingest_s": round(t1 - t0, 2), "predict_s": round(t2 - t1, 2),
       "cpu_self_s": round(time.process_time() - c0, 1), "cpu_children_s": round(ru.ru_utime + ru.ru_stime, 1),
       "series": {}}
if part not in (None, "final"):  # the step's forecasts, from TIMEX's own save file, and what they came from
    with open(hp["save_path"], "rb") as fh:
        saved = pickle.load(fh)
    out["part"] = int(part)
    for name in df.columns:
        out["series"][name] = {
            "historical": {m: {"timestamps": [str(t) for t in frame.index],
                               "forecast": [round(float(v), 4) for v in frame[name]]} for m, frame in saved.items()},
            "historical_steps": _steps.get(name, {})}
    print(json.dumps(out))
    sys.exit(0)
if part == "final":
    out["part"] = "final"
xp = cfg.get("xcorr_parameters") or {}
for c in containers:
    name = c.timeseries_data.columns[0]
    per_model = {}
    for m, r in c.models.items():
        best = sorted(r.results, key=lambda x: x.testing_performances.MAE)[0]
        per_model[m] = round(best.testing_performances.MAE, 4)
    entry = {"best": min(per_model, key=per_model.__getitem__), "mae": per_model}
    if c.xcorr is not None and xp:  # the extra regressors TIMEX's multivariate stage tries (its own rule)
        local = c.xcorr[xp.get("xcorr_mode_target", "pearson")]
        entry["xcorr_regressors"] = sorted(
            col for col in local.columns
            if abs(local.loc[local[col].abs().idxmax(), col]) > xp["xcorr_extra_regressor_threshold"]
            and local[col].abs().idxmax() >= 0)
    if getattr(c, "historical_prediction", None):
        entry["historical"] = {
            m: {"timestamps": [str(t) for t in h["series"].index],
                "forecast": [round(float(v), 4) for v in h["series"].iloc[:, 0]],
                "mae": round(h["metrics"].MAE, 4), "rmse": round(h["metrics"].RMSE, 4)}
            for m, h in c.historical_prediction.items()}
        # The last call is the final run on the whole series, not a step.
        entry["historical_steps"] = {m: steps[:-1] for m, steps in _steps.get(name, {}).items()}
    out["series"][name] = entry
print(json.dumps(out))
