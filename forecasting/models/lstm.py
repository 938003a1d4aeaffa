"""TIMEX `lstm`: a small LSTM on lagged windows, as TIMEX 1.2.3's LSTMModel (network: forecasting.models.lstm_net).

As TIMEX: the training values are scaled to [-1, 1] (min-max over the training window); the lag window is a
quarter of the training points (round(n / 4)); every window of that many values is a sample whose target is
the next value; 10 epochs; the forecast is recursive, each predicted value entering the next window.

Where this differs from TIMEX, and why:
- The forecast starts from the last `lag` training values. TIMEX starts from its last training sample's input,
  which ends one point before the last: its first forecast step predicts the last known value again, and every
  step after it is one step late.
- Every window starts from a zero state, in the forecast as in the training. TIMEX's predict resets a
  misspelt attribute (`model.hidden`, not `hidden_cell`), so its forecast windows start from the state the
  last training window left, and each from the one before.
- Extra regressors (the multivariate stage's, or `additional_regressors`), as TIMEX's: each is min-max scaled over
  the training points and enters every window next to the series' value (a point's row: the series, then its
  regressors); the forecast feeds each predicted value back with the regressors' values at that step. TIMEX
  builds each window row as many times as there are features (its split_sequences appends the row inside the
  feature loop: with one regressor every time step appears twice) and scales the regressors' future values
  by their own min and max (a scaler fitted on the horizon alone); here a window holds each step once and the
  future values are scaled as the training ones were, so a regressor's value means the same in both.
- JAX instead of PyTorch (the reasons are in forecasting.models.lstm_net); the network, initialisation,
  loss, optimiser and order of training are PyTorch's, so the same idea and about the same answers.

No intervals, as TIMEX's LSTM has none. JAX is an optional extra (`pip install 'timex-stream[lstm]'`, in the
images and in the test extra): without it, a unit with `lstm` fails with a message saying so.
"""

from __future__ import annotations

import importlib.util
from typing import Self

import numpy as np
import pandas as pd

from forecasting.models import lstm_net
from forecasting.models.base import LEVELS, ForecastModel, Prediction

EPOCHS = 10  # TIMEX's; the option "epochs" (tests only: configs cannot set it) trains less
MISSING = ("it needs JAX, which this installation does not have (the optional extra: "
           "pip install 'timex-stream[lstm]'); use arima, autoets or fbprophet")


def available() -> bool:
    """Whether this installation has the libraries of the network (JAX and optax)."""
    return all(importlib.util.find_spec(name) is not None for name in ("jax", "optax"))


def lag_window(points: int) -> int:
    """TIMEX's: a quarter of the training points (at least one)."""
    return max(1, round(points / 4))


def _min_max(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the minimum and the span (1 for a constant column, as sklearn's MinMaxScaler)."""
    low = values.min(axis=0)
    span = values.max(axis=0) - low
    return low, np.where(span == 0, 1.0, span)


class LSTM(ForecastModel):
    name = "lstm"
    min_points = 4  # one lag, three samples
    takes_regressors = True  # as TIMEX's LSTMModel (see the module's docstring)

    def fit(self, y: pd.Series, X: pd.DataFrame | None = None) -> Self:
        self._check_length(y)
        X = self._check_regressors(y, X)
        if not available():
            raise ValueError(f"model 'lstm' is not available here: {MISSING}")
        values = self._values(y)
        if not np.all(np.isfinite(values)):
            raise ValueError("the training values have missing or infinite values")
        self._columns = [] if X is None else list(X.columns)
        rows = values[:, None] if X is None else np.column_stack([values, X.to_numpy(dtype=float)])
        self._low, self._span = _min_max(rows)
        scaled = 2 * (rows - self._low) / self._span - 1
        self._lag = lag_window(len(values))
        self._epochs = int(self.options.get("epochs", EPOCHS))
        self._params = lstm_net.fit(scaled, self._lag, self._epochs)
        self._last = scaled[-self._lag :]
        return self

    def predict(self, h: int, levels: tuple[int, ...] = LEVELS, X_future: pd.DataFrame | None = None
                ) -> Prediction:
        future = self._check_future(h, self._columns, X_future)
        if future is not None:  # scaled as the training values of each regressor were
            future = 2 * (future - self._low[1:]) / self._span[1:] - 1
        scaled = lstm_net.forecast(self._params, self._last, h, future)
        return Prediction((scaled + 1) / 2 * self._span[0] + self._low[0])

    def params(self) -> dict[str, str]:
        out = {"lag_window": str(self._lag), "epochs": str(self._epochs), "hidden_units": str(lstm_net.HIDDEN)}
        if self._columns:
            out["regressors"] = ",".join(self._columns)
        return out
