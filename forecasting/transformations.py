"""Value transformations tried before fitting (TIMEX's `possible_transformations`), with exact inverses.

Each is fitted on the training window only (Yeo-Johnson estimates its lambda there), so a unit never
looks at its held-out points. Deviation from TIMEX: its `log` maps every |x| <= 1 to 0, which cannot be
inverted; here `log` is the plain logarithm and refuses non-positive data (use `log_modified`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

import numpy as np
from scipy import stats


class TransformationError(ValueError):
    """The data are outside the transformation's domain."""


class Transformation(ABC):
    name: str = ""
    identity = False  # `apply` gives float values back unchanged

    def fit(self, y: np.ndarray) -> Self:
        return self

    @abstractmethod
    def apply(self, y: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def inverse(self, z: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str:
        return self.name


class Identity(Transformation):
    name = "none"
    identity = True

    def apply(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=float)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=float)


class Log(Transformation):
    name = "log"

    def fit(self, y: np.ndarray) -> Self:
        if np.any(np.asarray(y) <= 0):
            raise TransformationError(
                "transformation 'log' needs strictly positive values; "
                "use 'log_modified' for data with zeros or negatives"
            )
        return self

    def apply(self, y: np.ndarray) -> np.ndarray:
        return np.log(np.asarray(y, dtype=float))

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.exp(np.asarray(z, dtype=float))


class LogModified(Transformation):
    """sign(x)·log(|x|+1): defined on all reals, odd, strictly increasing."""

    name = "log_modified"

    def apply(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        return np.sign(y) * np.log1p(np.abs(y))

    def inverse(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        return np.sign(z) * np.expm1(np.abs(z))


class Sqrt(Transformation):
    """The square root (Box-Cox lambda 0.5 up to scale): between the values and their logs, for counts and
    sales whose variation grows with their level less than in proportion. Refuses negative data. Its inverse
    z·|z| is the square's odd extension: strictly increasing, so a forecast below zero on the root scale stays
    below zero instead of folding back up."""

    name = "sqrt"

    def fit(self, y: np.ndarray) -> Self:
        if np.any(np.asarray(y) < 0):
            raise TransformationError("transformation 'sqrt' needs non-negative values")
        return self

    def apply(self, y: np.ndarray) -> np.ndarray:
        return np.sqrt(np.asarray(y, dtype=float))

    def inverse(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        return z * np.abs(z)


class YeoJohnson(Transformation):
    name = "yeo-johnson"

    def __init__(self) -> None:
        self.lmbda = 1.0  # lambda 1 is the identity: what a constant window gets

    def fit(self, y: np.ndarray) -> Self:
        y = np.asarray(y, dtype=float)
        if np.ptp(y) > 0:
            self.lmbda = float(stats.yeojohnson_normmax(y))
        return self

    def apply(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(stats.yeojohnson(np.asarray(y, dtype=float), lmbda=self.lmbda), dtype=float)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        lam = self.lmbda
        out = np.empty_like(z)
        pos = z >= 0
        with np.errstate(invalid="ignore", over="ignore"):
            if abs(lam) < 1e-12:
                out[pos] = np.expm1(z[pos])
            else:
                out[pos] = np.power(z[pos] * lam + 1, 1 / lam) - 1
            if abs(lam - 2) < 1e-12:
                out[~pos] = -np.expm1(-z[~pos])
            else:
                out[~pos] = 1 - np.power(-(2 - lam) * z[~pos] + 1, 1 / (2 - lam))
        return out

    def describe(self) -> str:
        return f"yeo-johnson (lambda {self.lmbda:.4g})"


TRANSFORMATIONS: dict[str, type[Transformation]] = {
    cls.name: cls for cls in (Identity, Log, LogModified, Sqrt, YeoJohnson)
}
# Those whose fit is nothing or one pass over the values; yeo-johnson's searches its lambda (~4 ms a fit, whatever
# the length).
CLOSED_FORM_TRANSFORMATIONS = frozenset({"none", "log", "log_modified", "sqrt"})


def make_transformation(name: str) -> Transformation:
    try:
        return TRANSFORMATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown transformation '{name}'; known: {', '.join(TRANSFORMATIONS)}") from None
