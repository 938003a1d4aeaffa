"""Runs TIMEX 1.2.3 on one config and prints ONE JSON line: ingest and predict wall seconds, CPU seconds, and
per series the best model and the best test MAE of every model; with xcorr_parameters the extra regressors
its rule picks, with historical_prediction_parameters each model's past forecasts and their MAE/RMSE.
Run it with the reference venv, never the
project's (TIMEX needs Python < 3.11): `PYTHONPATH=DIR/stub DIR/venv/bin/python bench/run_timex.py CONFIG`,
DIR built by the shared reference script (timex-reference.sh; README "Performance"). bench/compute.py does.
"""

import json
import logging
import resource
import sys
import time
import warnings

from timexseries.data_ingestion import ingest_timeseries
from timexseries.data_prediction.pipeline import create_timeseries_containers

warnings.simplefilter("ignore")
logging.basicConfig(level=logging.WARNING)
with open(sys.argv[1]) as fh:
    cfg = json.load(fh)
t0, c0 = time.time(), time.process_time()
df = ingest_timeseries(cfg)
t1 = time.time()
containers = create_timeseries_containers(df, cfg)
t2 = time.time()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
out = {"config": cfg["activity_title"], "ingest_s": round(t1 - t0, 2), "predict_s": round(t2 - t1, 2),
       "cpu_self_s": round(time.process_time() - c0, 1), "cpu_children_s": round(ru.ru_utime + ru.ru_stime, 1),
       "series": {}}
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
    out["series"][name] = entry
print(json.dumps(out))
