"""Writes data.csv and timex_1_2_3.json: TIMEX 1.2.3's own calc_all_xcorr on three small series, the
reference test_xcorr.py compares with. Run with TIMEX's venv, built as the shared reference README says:
    PYTHONPATH=<timexref>/stub <timexref>/venv/bin/python -W ignore make_reference.py
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from timexseries.data_prediction.xcorr import calc_all_xcorr

HERE = Path(__file__).parent
rng = np.random.default_rng(11)
n = 20
y = np.sin(np.linspace(0, 6, n + 3)) + rng.normal(0, 0.5, n + 3)
df = pd.DataFrame({"a": y[:n], "b": y[3:3 + n], "c": rng.normal(size=n) * 5 + 2},
                  index=pd.date_range("2000-01-01", periods=n, freq="D"))
out = {}
for lags in (3, 25):  # 25 > n: TIMEX clips the lags (differently per mode)
    config = {"xcorr_parameters": {"xcorr_max_lags": lags, "xcorr_mode": "pearson,kendall,spearman,matlab_normalized"}}
    out[lags] = {target: {mode: {"lags": [int(i) for i in frame.index], **{c: frame[c].tolist() for c in frame}}
                          for mode, frame in by_mode.items()}
                 for target, by_mode in calc_all_xcorr(df, config).items()}
df.to_csv(HERE / "data.csv", index_label="date")
(HERE / "timex_1_2_3.json").write_text(json.dumps(out))
