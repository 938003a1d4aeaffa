"""The live models' forecasts computed with less work per revision (forecasting/live/models: theta's paths as
linear algebra, ETS's interval pieces per h, ARIMA's closed-form Kalman forecast)
against what they replace: statsforecast's own functions, or (theta's float32 paths) an exact float64 replay of
them; and the kept pieces (per h, n, levels or parameters) against a fresh model's answer, to the bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from forecasting.live.models import load
from forecasting.live.models.arima import LiveARIMA
from forecasting.live.models.ets import LiveETS, _Intervals
from forecasting.live.models.theta import LiveTheta, _fast, _normals, _Paths
from forecasting.models import LEVELS, get_model_class
from forecasting.models.base import Prediction


def _series(n: int, m: int, level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 10 * np.sin(2 * np.pi * t / max(m, 2)) + np.cumsum(rng.normal(0, 1, n))


def _bounds(pred: Prediction) -> list[np.ndarray]:
    assert pred.intervals is not None
    return [pred.mean] + [b for lv in sorted(pred.intervals) for b in pred.intervals[lv]]


def _same(a: Prediction, b: Prediction) -> None:
    for x, y in zip(_bounds(a), _bounds(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _theta_paths_float64(obj: dict, h: int) -> np.ndarray:
    """statsforecast's compute_pi_samples (v2.1.1) step by step, in float64 (it stores float32), with its draws."""
    n, alpha, theta = obj["n"], obj["par"]["alpha"], obj["par"]["theta"]
    smoothed, _, A, B, _ = obj["states"][-1]
    mean_y = obj["mean_y"]
    tail = obj["residuals"][3:]
    sigma = np.std(tail, ddof=1)
    samples = np.empty((h, 200))
    for i in range(n, n + h):
        samples[i - n] = smoothed + (1 - 1 / theta) * (A * ((1 - alpha) ** i)
                                                       + B * (1 - (1 - alpha) ** (i + 1)) / alpha)
        samples[i - n] += sigma * _normals(h)[i - n]
        smoothed = alpha * samples[i - n] + (1 - alpha) * smoothed
        mean_y = (i * mean_y + samples[i - n]) / (i + 1)
        B = ((i - 1) * B + 6 * (samples[i - n] - mean_y) / (i + 1)) / (i + 2)
        A = mean_y - B * (i + 2) / 2
    return samples


@pytest.mark.parametrize("model_type", ["STM", "OTM", "DSTM", "DOTM"])
@pytest.mark.parametrize("n, m, h, level", [(40, 1, 7, 100.0), (150, 12, 6, -40.0), (1_000, 7, 30, 5.0)])
def test_theta_paths_are_the_float64_recursion(model_type: str, n: int, m: int, h: int, level: float) -> None:
    """The paths' linear algebra (before the seasonal factors) against compute_pi_samples' recursion replayed in
    float64 with its draws: 1e-12 of the paths' scale. (statsforecast's own bounds, of float32 paths, within 1e-6:
    test_models.py.)"""
    from statsforecast.theta import auto_theta, forward_theta

    assert _fast(), "pinned statsforecast moved: re-check forecasting.live.models.theta"
    y = _series(n, m, level, n + h)
    fit = auto_theta(y[: n // 2], m, model=model_type)
    obj = forward_theta({"m": m, "modeltype": model_type, "par": fit["par"]}, y)
    alpha, theta = float(obj["par"]["alpha"]), float(obj["par"]["theta"])
    smoothed, _, A, B, _ = obj["states"][-1]
    paths = _Paths.of(alpha, theta, n, h, LEVELS)
    plain = paths.mean_path(smoothed, A, B, obj["mean_y"], 1 - 1 / theta) + np.std(
        obj["residuals"][3:], ddof=1) * paths.bounds
    samples = _theta_paths_float64(obj, h)
    scale = np.abs(samples).max()
    for k, lv in enumerate(LEVELS):
        low = (100 - lv) / 200
        for row, q in ((2 * k, low), (2 * k + 1, low + lv / 100)):
            np.testing.assert_allclose(plain[row], np.quantile(samples, q, axis=1), rtol=0, atol=1e-12 * scale)


def test_theta_keeps_its_paths_only_while_alpha_theta_n_h_and_the_levels_stay() -> None:
    y = _series(1_100, 7, 100.0, 3)
    live = LiveTheta({"m": 7, "modeltype": "OTM", "alpha": 0.4, "theta": 2.2, "initial_smoothed": 50.0,
                      "decomposition": None}, None)
    live.update(y[:990].tolist())

    def fresh() -> LiveTheta:
        return load(live.to_bytes())  # type: ignore[return-value]

    for h, levels in ((6, LEVELS), (9, LEVELS), (9, (95,)), (6, LEVELS)):
        got = live.forecast(h, levels)
        assert live._paths is not None and live._paths.key[2:] == (990, h, levels)
        _same(got, fresh().forecast(h, levels))
    for step in range(3):  # every point moves n on: new paths, the same as a fresh model's
        live.update([y[990 + step]])
        kept = live._paths
        _same(live.forecast(6, LEVELS), fresh().forecast(6, LEVELS))
        assert live._paths is not kept and live._paths is not None and live._paths.key[2] == 991 + step
        again = live._paths
        live.forecast(6, LEVELS)
        assert live._paths is again  # the same n, h and levels: kept
    other = load(live.to_bytes())  # other parameters: other paths
    other.params = {**live.params, "alpha": 0.5}
    other._paths = live._paths
    _same(other.forecast(6, LEVELS), load(other.to_bytes()).forecast(6, LEVELS))


def _ets_live(components: str, m: int, seed: int) -> LiveETS:
    from statsforecast.ets import ets_f

    y = np.maximum(_series(80, m, 100.0, seed), 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ets_f(y, m, model=components[:3], damped=components[3] == "D")
    fitted = {"components": str(fit["components"]), "m": m, "par": [float(p) for p in fit["par"]],
              "n_params": int(fit["n_params"]), "distribution": "normal"}
    assert fitted["components"] == components
    e2 = np.asarray(fit["residuals"]) ** 2
    return LiveETS(fitted, np.asarray(fit["states"][-1]), float(e2[np.isfinite(e2)].sum()), len(y))


@pytest.mark.parametrize("components", ["ANNN", "AANN", "AAND", "ANAN", "AAAN", "AAAD",  # class 1
                                        "MNNN", "MANN", "MAND", "MNAN", "MAAN", "MAAD",  # class 2
                                        "MNMN", "MAMN", "MAMD"])  # class 3
def test_ets_intervals_are_statsforecasts_to_the_bit_for_every_class(components: str) -> None:
    live = _ets_live(components, 4, 1)
    assert _Intervals.of(live.fitted, 7) is not None, "pinned statsforecast moved: re-check models/ets.py"
    for h in (7, 1, 12, 7):  # the pieces kept per h, and a new h
        _same(live.forecast(h, LEVELS), live._statsforecast(h, LEVELS))
        np.testing.assert_array_equal(live.forecast(h, ()).mean, live._statsforecast(h, ()).mean)
    live.update([101.0, 99.0])  # a new state and sigma²: the same pieces
    _same(live.forecast(7, LEVELS, tail=[100.0]), live.ahead([100.0])._statsforecast(7, LEVELS))


def test_ets_what_it_does_not_cover_is_statsforecasts_own() -> None:
    live = _ets_live("ANNN", 1, 2)
    multiplicative_trend = {**live.fitted, "components": "AMNN"}  # statsforecast simulates those
    assert _Intervals.of(multiplicative_trend, 7) is None
    assert _Intervals.of({**live.fitted, "distribution": "t"}, 7) is None


@pytest.mark.parametrize("season, trend", [(12, 0.0), (12, 0.5), (1, 1.0)])
def test_arima_closed_form_forecast_is_kalman_forecasts(season: int, trend: float) -> None:
    import pandas as pd
    from statsforecast.arima import kalman_forecast

    rng = np.random.default_rng(7)
    values = _series(150, season, 100.0, 7) + trend * np.arange(150) + rng.normal(0, 0.1, 150)
    y = pd.Series(values, index=pd.date_range("2000-01-01", periods=150, freq="MS"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_model_class("arima")(season_length=season).fit(y.iloc[:120])
    live = LiveARIMA.from_fitted(model, values[:120])
    for step, value in enumerate(values[120:]):
        live.update([value])
        for h in ((7, 1, 24) if step % 10 == 0 else (7,)):
            mean, var = kalman_forecast(h, live.mod["Z"], live.a, live.P, live.mod["T"], live.mod["V"],
                                        live.mod["h"])
            rows, noise = live._ahead_rows(h)
            np.testing.assert_allclose(rows @ live.a, mean, rtol=1e-12)
            np.testing.assert_allclose(noise + np.einsum("lr,rs,ls->l", rows, live.P, rows), var, rtol=1e-12)
    assert set(live._rows) == {1, 7, 24}
    _same(live.forecast(7, LEVELS), load(live.to_bytes()).forecast(7, LEVELS))  # kept rows = fresh ones


def _residuals_std(y: np.ndarray, params: dict, factors: np.ndarray | None) -> float:
    """np.std(residuals[3:], ddof=1) of a standard theta model (OTM, STM) on all of y, computed whole in numpy:
    the level by scipy's exponential filter, A and B by the regression on time over all the points."""
    from scipy.signal import lfilter

    n, alpha, init = len(y), params["alpha"], params["initial_smoothed"]
    multiplicative = params["decomposition"] == "multiplicative"
    model_y = y if factors is None else (y / factors if multiplicative else y - factors)
    level = lfilter([alpha], [1.0, -(1 - alpha)], model_y, zi=[(1 - alpha) * init])[0]
    t = np.arange(n, dtype=float)
    mean = model_y.mean()
    b = 6 * (2 * (model_y @ (t + 1) / n) - (n + 1) * mean) / (n * n - 1)
    a = mean - (n + 1) * b / 2
    c = 1 - 1 / params["theta"]
    mu = np.concatenate([[init], level[:-1]]) + c * (a * (1 - alpha) ** t + b * (1 - (1 - alpha) ** (t + 1)) / alpha)
    e = model_y - mu
    residuals = e if factors is None else (e * factors if multiplicative else e + factors)
    return float(np.std(residuals[3:], ddof=1))


@pytest.mark.parametrize("decomposition", [None, "multiplicative", "additive"])
@pytest.mark.parametrize("model_type, alpha, theta", [("OTM", 0.3, 1_000.0), ("OTM", 0.99, 5.0), ("STM", 0.5, 2.0)])
def test_theta_sigma_stays_the_residuals_std_on_a_long_steep_stream(
        decomposition: str | None, model_type: str, alpha: float, theta: float) -> None:
    """200,000 points rising 1,000 a step (values to 2e8, noise 1): the standard models' residuals depend on A
    and B of all the points, so sigma comes from co-moments kept per point; summing squares instead lost all
    of it here (a variance of -35, clamped to 0: bounds on the mean). Within 1e-8: a value near 2e8 is itself
    rounded to 3e-8, a thirtieth of the noise."""
    n, m = 200_000, 12
    rng = np.random.default_rng(7)
    t = np.arange(n)
    season = 1 + 0.2 * np.sin(2 * np.pi * np.arange(m) / m)
    trend = 1_000.0 + 1_000.0 * t
    if decomposition == "multiplicative":
        y = trend * season[t % m] + rng.normal(0, 1, n)
    else:
        y = trend + (100 * season[t % m] if decomposition else 0.0) + rng.normal(0, 1, n)
    factors = None if decomposition is None else (season if decomposition == "multiplicative" else 100 * season)
    params = {"m": m, "modeltype": model_type, "alpha": alpha, "theta": theta, "initial_smoothed": 500.0,
              "decomposition": decomposition}
    live = LiveTheta(params, None if factors is None else factors.tolist())
    live.update(y.tolist())
    want = _residuals_std(y, params, None if factors is None else factors[t % m])
    assert live._sigma() == pytest.approx(want, rel=1e-8)
