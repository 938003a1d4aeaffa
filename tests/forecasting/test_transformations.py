from __future__ import annotations

import numpy as np
import pytest

from forecasting.transformations import TRANSFORMATIONS, TransformationError, make_transformation

RNG = np.random.default_rng(42)
MIXED = np.concatenate([RNG.normal(0, 50, 200), [0.0, -1.0, 1.0, 1e-9, 1e6]])
POSITIVE = np.abs(MIXED) + 0.5


@pytest.mark.parametrize("name", sorted(TRANSFORMATIONS))
def test_inverse_is_exact(name: str) -> None:
    data = POSITIVE if name in ("log", "sqrt") else MIXED
    t = make_transformation(name).fit(data)
    np.testing.assert_allclose(t.inverse(t.apply(data)), data, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", sorted(TRANSFORMATIONS))
def test_increasing_so_intervals_keep_their_order(name: str) -> None:
    data = np.sort(POSITIVE if name in ("log", "sqrt") else MIXED)
    t = make_transformation(name).fit(data)
    assert np.all(np.diff(t.apply(data)) >= 0)
    z = np.linspace(-3, 3, 50)
    assert np.all(np.diff(t.inverse(z)) > 0)


@pytest.mark.parametrize("lam", [-1.5, 0.0, 0.5, 1.0, 2.0, 3.0])
def test_yeo_johnson_round_trip_for_every_lambda_branch(lam: float) -> None:
    t = make_transformation("yeo-johnson")
    t.lmbda = lam
    data = np.linspace(-0.9, 5, 40)
    np.testing.assert_allclose(t.inverse(t.apply(data)), data, rtol=1e-9, atol=1e-9)


def test_yeo_johnson_fits_lambda_on_training_data_only() -> None:
    skewed = np.exp(RNG.normal(0, 1, 300))
    t = make_transformation("yeo-johnson").fit(skewed)
    assert t.lmbda < 1  # right-skewed data need compressing
    constant = make_transformation("yeo-johnson").fit(np.full(10, 3.0))
    assert constant.lmbda == 1.0


def test_log_modified_matches_timex_formula() -> None:
    t = make_transformation("log_modified")
    x = np.array([-10.0, -0.5, 0.0, 0.5, 10.0])
    np.testing.assert_allclose(t.apply(x), np.sign(x) * np.log(np.abs(x) + 1))


def test_log_refuses_non_positive_data_with_advice() -> None:
    with pytest.raises(TransformationError, match="log_modified"):
        make_transformation("log").fit(np.array([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="unknown transformation"):
        make_transformation("cbrt")


def test_sqrt_takes_zeros_refuses_negatives_and_keeps_negative_forecasts_negative() -> None:
    t = make_transformation("sqrt").fit(np.array([0.0, 4.0, 9.0]))
    np.testing.assert_allclose(t.apply(np.array([0.0, 4.0, 9.0])), [0.0, 2.0, 3.0])
    np.testing.assert_allclose(t.inverse(np.array([-2.0, 0.5, 3.0])), [-4.0, 0.25, 9.0])  # z·|z|: no fold back up
    with pytest.raises(TransformationError, match="non-negative"):
        make_transformation("sqrt").fit(np.array([1.0, -0.5]))
