"""TIMEX 1.2.3's arima search, for `model_parameters.arima_seasonal: false`: pmdarima 1.8.5's
`auto_arima(y, seasonal=False, error_action='ignore', suppress_warnings=True)` (timexseries'
arima_predictor.py) with its defaults, on statsmodels' SARIMAX as pmdarima fits it.

Why not statsforecast's AutoARIMA with the same settings: its candidates are fitted by CSS then exact
likelihood to convergence, pmdarima's by SARIMAX's exact likelihood with L-BFGS stopped after 50
iterations. The information criteria differ, so the stepwise searches walk to different orders (on the
parity bench's seasonal series 3 of 11 steps ended 2-8 % apart); this replays pmdarima's walk instead.

pmdarima's defaults kept: d by KPSS at 5 % (at most 2; `kpss_differences`), p, q <= 5 (and <= n/3), the
stepwise search from (2, d, 2) with R's first candidates and moves (at most 100 fits), AIC, an intercept
from the start when d is 1 or 2 (pmdarima's rule with its D = -1; the search may add or drop it), and a
candidate whose inverse roots reach 0.99 in modulus refused (pmdarima's test: the MA roots' when q > 0,
else the AR roots').

Replayed in the TIMEX reference venv (statsmodels 0.13.5, scipy 1.15.3) this gives pmdarima's order, AIC
and forecast at every training window checked. Here (statsmodels 0.15, numpy 2) some fits end at a
different point (AIC -142.90 against -140.10), which may change the window or the order chosen. Not a code
difference (same start-parameter code, transformation, L-BFGS-B options; the Kalman filters agree bit for
bit on the same input): the series and start parameters differ in their last bits (numpy 1.24's SIMD log,
OpenBLAS's SVD), and ill-conditioned fits amplify that; given the reference's log values and start
parameters this code reproduces its fit exactly. README, "Parity with TIMEX 1.2.3".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_P = MAX_Q = 5
START_P = START_Q = 2
MAX_FITS = 100  # pmdarima's stepwise limit
MAXITER = 50  # pmdarima's L-BFGS iterations
_ROOT_LIMIT = 1 - 1e-2


@dataclass(frozen=True)
class Candidate:
    order: tuple[int, int, int]
    intercept: bool


def _fit(y: np.ndarray, X: np.ndarray | None, c: Candidate) -> Any:
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and start-parameter warnings, as pmdarima's suppress_warnings
        model = SARIMAX(endog=y, exog=X, order=c.order, seasonal_order=(0, 0, 0, 0),
                        trend="c" if c.intercept else None)
        return model.fit(method="lbfgs", maxiter=MAXITER, disp=0)


def _aic(result: Any, c: Candidate) -> float:
    """pmdarima's AIC with its root test."""
    aic = float(result.aic)
    p, _, q = c.order
    largest = 0.0
    if p > 0:
        largest = max(0.0, *np.abs(1 / result.arroots))
    if q > 0 and np.isfinite(aic):
        largest = max(0.0, *np.abs(1 / result.maroots))  # replaces the AR roots' test, as pmdarima's does
    return np.inf if largest > _ROOT_LIMIT or not np.isfinite(aic) else aic


class _Search:
    def __init__(self, y: np.ndarray, X: np.ndarray | None, intercept: bool) -> None:
        self.y, self.X, self.intercept = y, X, intercept
        self.fits: dict[Candidate, tuple[Any, float]] = {}
        self.best: Candidate | None = None

    def try_(self, p: int, d: int, q: int, intercept: bool | None = None) -> bool:
        """Fit a candidate not seen before; True when it is the best so far (pmdarima's `_do_fit`)."""
        c = Candidate((p, d, q), self.intercept if intercept is None else intercept)
        if c in self.fits:
            return False
        try:
            result = _fit(self.y, self.X, c)
            aic = _aic(result, c)
        except (np.linalg.LinAlgError, ValueError):
            result, aic = None, np.inf
        self.fits[c] = (result, aic)
        if result is None or not np.isfinite(aic):
            return False
        if self.best is None or aic < self.fits[self.best][1]:
            self.best = c
            return True
        return False


def detrended(y: np.ndarray, X: np.ndarray | None) -> np.ndarray:
    """What pmdarima tests for d: with regressors, the residuals of y's least squares on them (and a constant)."""
    if X is None:
        return y
    design = np.column_stack([np.ones(len(y)), X])
    return y - design @ np.linalg.lstsq(design, y, rcond=None)[0]


def auto_arima(y: np.ndarray, X: np.ndarray | None, d: int) -> tuple[Any, Candidate]:
    """The best (SARIMAX results, candidate) of pmdarima's stepwise search with `d` differences."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread, also outside the pool's workers (which set it already): SARIMAX's small matrices make
    # threaded OpenBLAS spin (a 48-point search: 19.5 CPU-s with the default threads, 2.6 with one).
    with threadpool_limits(limits=1):
        return _search(y, X, d)


def _search(y: np.ndarray, X: np.ndarray | None, d: int) -> tuple[Any, Candidate]:
    n = len(y)
    max_p, max_q = min(MAX_P, n // 3), min(MAX_Q, n // 3)
    start_p, start_q = (min(START_P, 1), min(START_Q, 1)) if n < 10 else (START_P, START_Q)
    p, q = min(start_p, max_p), min(start_q, max_q)
    dx = np.diff(y, n=d) if d else y
    if np.ptp(dx) == 0:  # pmdarima: a constant (differenced) series gets (0, d, 0) with an intercept at once
        c = Candidate((0, d, 0), True)
        return _fit(y, X, c), c
    # pmdarima's with_intercept='auto' is `d + D in (0, 1)`, and seasonal=False sets D to -1: so an intercept
    # when d is 1 or 2, none when d is 0 (the search may then add it).
    s = _Search(y, X, intercept=d in (1, 2))
    s.try_(p, d, q)
    if s.try_(0, d, 0):
        p = q = 0
    if max_p > 0 and s.try_(1, d, 0):
        p, q = 1, 0
    if max_q > 0 and s.try_(0, d, 1):
        p, q = 0, 1
    if s.intercept and s.try_(0, d, 0, intercept=False):
        p = q = 0
    moves = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))
    tried = -1
    while tried < len(s.fits) < MAX_FITS:
        tried = len(s.fits)
        for dp, dq in moves:
            np_, nq = p + dp, q + dq
            if 0 <= np_ <= max_p and 0 <= nq <= max_q and len(s.fits) < MAX_FITS and s.try_(np_, d, nq):
                p, q = np_, nq
                break
        else:
            if len(s.fits) < MAX_FITS and s.try_(p, d, q, intercept=not s.intercept):
                s.intercept = not s.intercept
    if s.best is None:
        raise ValueError("no ARIMA candidate could be fitted (TIMEX's auto_arima fails the same way)")
    return s.fits[s.best][0], s.best
