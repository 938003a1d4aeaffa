"""A revision's content depends only on the points folded in, never on how they were batched: under load
several points fold into one revision, and after a restart or on a replay the batches differ, yet revision n
(the same points) must carry the same forecast, to the bit. Checked for every model kind, with batches that
cross the refit kinds' refit boundary at different places."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.live.models import LiveModel, live_model, load
from forecasting.live.models.refit import REFIT_EVERY, LiveRefit
from forecasting.models import LEVELS, Prediction
from tests.forecasting.live.test_models import FIT, H, data, fitted

NEW = REFIT_EVERY + 23  # crosses the refit boundary once, whatever the batching
BATCHINGS = ([1] * NEW, [NEW], [3, REFIT_EVERY, NEW - 3 - REFIT_EVERY], [REFIT_EVERY - 1, 2, NEW - REFIT_EVERY - 1],
             [7] * (NEW // 7) + [NEW % 7])
CUTS = (3, REFIT_EVERY + 1, NEW)  # batch ends the batchings share (but the first): revisions compared there


def _stream() -> pd.Series:
    y = data(seed=2)
    extra = data(seed=9).iloc[:NEW]
    return pd.concat([y.iloc[:FIT], extra.set_axis(pd.date_range(y.index[FIT - 1], periods=NEW + 1, freq="MS")[1:])])


def _revisions(live: LiveModel, new: np.ndarray, sizes: list[int], resume_at: int | None = None
               ) -> dict[int, Prediction]:
    """Forecasts at the cuts, by the count of points folded; `resume_at`: save and load the state there
    (a restart resuming from a checkpoint)."""
    out, done = {}, 0
    for size in sizes:
        live.update(new[done:done + size])
        done += size
        if resume_at is not None and done == resume_at:
            live = load(live.to_bytes())
        if done in CUTS:  # a revision there (forecasting after every batch would only cost time)
            out[done] = live.forecast(H, tail=new[done:done + 2] if done + 2 <= len(new) else ())
    return out


def _same(a: Prediction, b: Prediction) -> None:
    np.testing.assert_array_equal(a.mean, b.mean)
    for lv in LEVELS:
        np.testing.assert_array_equal(a.intervals[lv][0], b.intervals[lv][0])  # type: ignore[index]
        np.testing.assert_array_equal(a.intervals[lv][1], b.intervals[lv][1])  # type: ignore[index]


# "refit": the refit kinds' schedule (exponentialsmoothing, fbprophet, arima with regressors: one class, LiveRefit),
# here around naive, whose fit is instant (an exponential smoothing fit costs seconds of CPU, for the same schedule).
@pytest.mark.parametrize("name", ["naive", "seasonal_naive", "autoets", "arima", "theta", "refit"])
def test_a_revision_is_the_same_whatever_the_batches_that_folded_its_points(name: str) -> None:
    y = _stream()
    model = fitted(name if name != "refit" else "naive", y.iloc[:FIT])

    def live() -> LiveModel:
        if name == "refit":
            return LiveRefit.from_fitted(model, y.iloc[:FIT])
        return live_model(model, y.iloc[:FIT])

    new = y.to_numpy()[FIT:]
    runs = [_revisions(live(), new, sizes) for sizes in BATCHINGS]
    runs.append(_revisions(live(), new, BATCHINGS[2], resume_at=3))
    for run in runs[1:]:
        assert NEW in run
        for n in set(run) & set(runs[0]):
            _same(run[n], runs[0][n])
