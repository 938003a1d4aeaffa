"""bench/m4_metrics.py against values worked out by hand (and the classical decomposition against statsmodels')."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from statsmodels.tsa.seasonal import seasonal_decompose

_PATH = Path(__file__).resolve().parents[2] / "bench" / "m4_metrics.py"
_SPEC = importlib.util.spec_from_file_location("m4_metrics", _PATH)
assert _SPEC and _SPEC.loader
m4 = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(m4)

# Three cycles of a flat quarterly pattern: mean 25, deviations -15, -5, 5, 15, Σ d² = 1500.
PATTERN = np.tile([10.0, 20.0, 30.0, 40.0], 3)


def test_autocorrelations_and_the_90_percent_seasonality_test_by_hand() -> None:
    # r1 = (3 (75 - 25 + 75) - 2·225) / 1500; r2 = 10 · (-75) / 1500; r3 = (3·(-225) + 4·75 - 2·25) / 1500;
    # r4 = 2 · 500 / 1500.
    assert m4.acf(PATTERN, 4) == pytest.approx([-0.05, -0.5, -425 / 1500, 2 / 3])
    # limit = 1.645 √((1 + 2 (0.05² + 0.5² + 0.28333²)) / 12) = 0.47487 · 1.29056 = 0.61285 < 0.6667: seasonal.
    limit = 1.645 * np.sqrt((1 + 2 * (0.05**2 + 0.5**2 + (425 / 1500) ** 2)) / 12)
    assert limit == pytest.approx(0.61285, abs=1e-5) and m4.is_seasonal(PATTERN, 4)
    assert not m4.is_seasonal(PATTERN[:11], 4)  # fewer than 3 m points
    # A trend, 1..24: r4 = Σ (t - 12.5)(t + 4 - 12.5) / Σ (t - 12.5)² = 0.5087, but r1..r3 (0.875, 0.751, 0.628)
    # widen the limit to 1.645 √((1 + 2 · 1.9225) / 24) = 0.7082: not seasonal.
    assert m4.acf(np.arange(1.0, 25.0), 4)[3] == pytest.approx(585 / 1150)
    assert not m4.is_seasonal(np.arange(1.0, 25.0), 4)
    assert not m4.is_seasonal(PATTERN, 1)


def test_naive2_on_a_pure_seasonal_pattern_and_on_a_non_seasonal_series() -> None:
    # The centred 2×4 moving average of the pattern is 25 everywhere: indices 10/25 … 40/25, mean 1.
    assert m4.seasonal_indices(PATTERN, 4) == pytest.approx([0.4, 0.8, 1.2, 1.6])
    # The last point, 40, adjusted: 40 / 1.6 = 25; re-seasonalised from the next position in the cycle.
    assert m4.naive2(PATTERN, 6, 4) == pytest.approx([10, 20, 30, 40, 10, 20])
    assert m4.naive2(np.tile(PATTERN, 2)[:15], 3, 4) == pytest.approx([40, 10, 20])  # ends on the third position
    assert m4.naive2(np.arange(1.0, 25.0), 3, 4) == pytest.approx([24, 24, 24])  # not seasonal: naive


def test_indices_match_the_classical_multiplicative_decomposition() -> None:
    rng = np.random.default_rng(5)
    for m, n in ((12, 75), (4, 30), (7, 50)):
        t = np.arange(n)
        x = (100 + t) * (1 + 0.2 * np.sin(2 * np.pi * t / m)) * np.exp(rng.normal(0, 0.02, n))
        expected = seasonal_decompose(x, model="multiplicative", period=m).seasonal[:m]
        assert m4.seasonal_indices(x, m) == pytest.approx(expected, rel=1e-9)


def test_smape_mase_and_owa_by_hand() -> None:
    # 200·10/210 = 9.5238…, 200·20/380 = 10.5263…
    assert m4.smape([100, 200], [110, 180]) == pytest.approx((2000 / 210 + 4000 / 380) / 2)
    # In-sample |Δ| with m = 1: 1, 2, 3 → 2; errors 10, 20 → 15 / 2.
    assert m4.mase([1, 2, 4, 7], [100, 200], [110, 180], 1) == pytest.approx(7.5)
    # m = 2: |4 - 1|, |7 - 2| → 4.
    assert m4.mase([1, 2, 4, 7], [100, 200], [110, 180], 2) == pytest.approx(3.75)
    assert m4.owa([10, 20], [1, 1], [20, 40], [2, 2]) == pytest.approx(0.5)
    assert m4.owa([15], [1.5], [20], [1]) == pytest.approx((0.75 + 1.5) / 2)
