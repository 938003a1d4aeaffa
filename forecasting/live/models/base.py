"""The live model interface (statsforecast style: one small class per model kind, the same methods for all).

A live model starts from a fitted `forecasting.models` model and its training values (`from_fitted`), folds in
new *final* points one by one (`update`: the work depends on the new points only, never on the history's
length), and forecasts `h` steps with 80/95 intervals (`forecast`), optionally after a provisional tail that
may still change (filtered on a copy, so the state only ever holds final points). Its state is a few kB of
JSON (`to_bytes`/`from_bytes`) that resumes exactly. Values are on the model's scale: a transformation chosen
with the model is applied by the caller (and inverted on the forecast), as forecasting.units does.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np

from forecasting.models.base import LEVELS, ForecastModel, Prediction


class NotUpdatable(ValueError):
    """This fitted model cannot be updated point by point (e.g. ARIMA with regressors): refit instead."""


class LiveModel(ABC):
    kind: ClassVar[str] = ""

    @classmethod
    @abstractmethod
    def from_fitted(cls, model: ForecastModel, y: np.ndarray) -> Self:
        """State after `model` was fitted on `y`."""

    @abstractmethod
    def update(self, values: Sequence[float]) -> None:
        """Fold in new final points, in order."""

    @abstractmethod
    def _predict(self, h: int, levels: tuple[int, ...]) -> Prediction: ...

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """JSON-able state: `from_state(state())` resumes exactly."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any]) -> Self: ...

    def forecast(self, h: int, levels: tuple[int, ...] = LEVELS, tail: Sequence[float] = ()) -> Prediction:
        """The next `h` values after the folded points and `tail` (provisional points, not kept)."""
        if not len(tail):
            return self._predict(h, levels)
        return self.ahead(tail)._predict(h, levels)

    def ahead(self, tail: Sequence[float]) -> Self:
        """A copy with `tail` folded in, this one unchanged: the state `update(tail)` would give, to the bit (the
        same steps from the same state), so once `tail` is final the copy can stand for this model updated."""
        ahead = self.fork()
        ahead.update(tail)
        return ahead

    def mean_is_levels_free(self) -> bool:
        """Whether the last forecast's mean is what a forecast without intervals gives (the same code: true of
        every kind whose intervals are computed around a mean that does not depend on them)."""
        return True

    def fork(self) -> Self:
        """A copy that `update` can change without changing this one (a kind whose update only rebinds its
        attributes overrides this with a shallow copy: a deep one costs more than its forecast)."""
        return copy.deepcopy(self)

    def shallow_copy(self) -> Self:
        """copy.copy(self) for these plain classes (the same attributes, shared), without copy's protocol
        lookups: a fork a revision."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def to_bytes(self) -> bytes:
        return json.dumps({"kind": self.kind, **self.state()}, separators=(",", ":")).encode()


def pack(array: np.ndarray) -> str:
    """float64 bytes, base64: exact, and half the size of JSON numbers."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.float64).tobytes()).decode()


def unpack(text: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    array = np.frombuffer(base64.b64decode(text), dtype=np.float64).copy()
    return array.reshape(shape) if shape is not None else array


@functools.lru_cache(maxsize=8)
def _z(levels: tuple[int, ...]) -> np.ndarray:
    from statsforecast.utils import _quantiles

    return _quantiles(np.asarray(levels))  # a frozen scipy distribution: ~0.5 ms a call, so computed once


def normal_intervals(mean: np.ndarray, se: np.ndarray, levels: tuple[int, ...]) -> Prediction:
    """mean ± z·se, with statsforecast's own quantiles (the fitted models' intervals). Every level's z·se in one
    outer product, then the bounds in two subtractions/additions (the same products and sums as level by level:
    the same bits, in three numpy calls, not four a level: a live revision's intervals)."""
    if not levels:
        return Prediction(mean)
    spread = np.multiply.outer(_z(tuple(levels)), se)
    lower, upper = mean - spread, mean + spread
    return Prediction(mean, {lv: (lower[i], upper[i]) for i, lv in enumerate(levels)})
