"""Live models: after folding new points one by one, each forecast equals a from-scratch forecast with the
same parameters on the same data (statsforecast's own `forward`, or a fit, per kind); states persist in a few kB
and resume exactly; a provisional tail never changes the state."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from forecasting.live.follow import RefitWork, refit_live
from forecasting.live.models import LiveModel, live_model, load
from forecasting.live.models.arima import LiveARIMA
from forecasting.live.models.ets import LiveETS
from forecasting.live.models.naive import LiveNaive, LiveSeasonalNaive
from forecasting.live.models.refit import REFIT_EVERY, Ahead, LiveRefit
from forecasting.live.models.theta import LiveTheta
from forecasting.models import LEVELS, ForecastModel, Prediction, get_model_class
from forecasting.units import _adjust_by, _bounds
from tests.plugins.core_series import make_config

FIT, NEW, H = 120, 30, 6
TOLERANCE = 1e-9  # relative; the live filters run the same float operations, so in practice 0


def data(seed: int = 0, trend: float = 0.0) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(FIT + NEW)
    values = 100 + 10 * np.sin(2 * np.pi * t / 12) + np.cumsum(rng.normal(0, 1, len(t))) + trend * t
    return pd.Series(values, index=pd.date_range("2000-01-01", periods=len(t), freq="MS"))


def fitted(name: str, y: pd.Series) -> ForecastModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_model_class(name)(season_length=12).fit(y)


def fold(live: LiveModel, new: np.ndarray) -> None:
    for value in new:  # point by point, as a stream gives them
        live.update([value])


def assert_same(got: Prediction, expected: dict[str, np.ndarray] | Prediction, rtol: float = TOLERANCE) -> None:
    if isinstance(expected, Prediction):
        want = {"mean": expected.mean, **{f"lo-{lv}": lo for lv, (lo, _) in (expected.intervals or {}).items()},
                **{f"hi-{lv}": hi for lv, (_, hi) in (expected.intervals or {}).items()}}
    else:
        want = expected
    np.testing.assert_allclose(got.mean, want["mean"], rtol=rtol)
    assert got.intervals is not None
    for lv in LEVELS:
        np.testing.assert_allclose(got.intervals[lv][0], want[f"lo-{lv}"], rtol=rtol)
        np.testing.assert_allclose(got.intervals[lv][1], want[f"hi-{lv}"], rtol=rtol)


@pytest.mark.parametrize("name, cls", [("naive", LiveNaive), ("seasonal_naive", LiveSeasonalNaive)])
def test_naive_kinds_equal_a_fit_on_all_the_data(name: str, cls: type[LiveModel]) -> None:
    y = data()
    live = live_model(fitted(name, y.iloc[:FIT]), y.iloc[:FIT])
    assert isinstance(live, cls)
    fold(live, y.to_numpy()[FIT:])
    assert_same(live.forecast(H), fitted(name, y).predict(H))  # these models have no parameters to keep


def _ets_reference(model: ForecastModel, y: pd.Series) -> dict[str, np.ndarray]:
    from statsforecast.ets import forecast_ets, forward_ets

    return forecast_ets(forward_ets(model._model.model_, y.to_numpy()), H, level=list(LEVELS))


def _arima_reference(model: ForecastModel, y: pd.Series) -> dict[str, np.ndarray]:
    from statsforecast.arima import forecast_arima, forward_arima

    out = forecast_arima(forward_arima(model._model.model_, y.to_numpy()), H, level=list(LEVELS))
    return {"mean": out["mean"], **{f"lo-{lv}": out["lower"][f"{lv}%"].to_numpy() for lv in LEVELS},
            **{f"hi-{lv}": out["upper"][f"{lv}%"].to_numpy() for lv in LEVELS}}


def _theta_reference(model: ForecastModel, y: pd.Series) -> dict[str, np.ndarray]:
    return theta_reference(model._model.model_, y.to_numpy(), H)


def theta_reference(fit: dict, y: np.ndarray, h: int) -> dict[str, np.ndarray]:
    """statsforecast's theta on all of `y` with the fit's parameters and seasonal decomposition (fitted on y's
    first fit["n"] points, continued period by period): its own C++ filter (`pegels_resid`) and `forecast_theta`.
    `forward_theta` would also estimate the decomposition again, on all of y; a live theta keeps the fit's."""
    from statsforecast._lib import theta as _theta
    from statsforecast.theta import forecast_theta, switch_theta

    m, mtype, par, n = int(fit["m"]), fit["modeltype"], fit["par"], len(y)
    theta = 2.0 if mtype in ("STM", "DSTM") else par["theta"]
    factors = None
    if fit.get("decompose", False):
        last = np.asarray(fit["seas_forecast"]["mean"])  # the factors of the fit's points n .. n+m-1
        factors = last[(np.arange(n + m) - fit["n"]) % m]
    multiplicative = fit.get("decomposition_type") == "multiplicative"
    model_y = y if factors is None else (y / factors[:n] if multiplicative else y - factors[:n])
    _, e, states, mse = _theta.pegels_resid(model_y, switch_theta(mtype), par["initial_smoothed"], par["alpha"],
                                            theta, 3)
    obj = {"m": m, "modeltype": mtype, "n": n, "states": states, "residuals": e, "mean_y": np.mean(model_y),
           "mse": mse, "par": {"alpha": par["alpha"], "theta": theta, "initial_smoothed": par["initial_smoothed"]}}
    if factors is not None:
        obj.update(residuals=e * factors[:n] if multiplicative else e + factors[:n], decompose=True,
                   decomposition_type=fit["decomposition_type"], seas_forecast={"mean": factors[n:]})
    return forecast_theta(obj, h, level=list(LEVELS))


@pytest.mark.parametrize("name, cls, trend, reference", [
    ("autoets", LiveETS, 0.0, _ets_reference),
    ("autoets_damped", LiveETS, 0.5, _ets_reference),  # a trend for it to damp
    ("arima", LiveARIMA, 0.0, _arima_reference),  # seasonal: ARIMA(p,d,q)(P,D,Q)[12]
    ("arima", LiveARIMA, 0.5, _arima_reference),
    ("theta", LiveTheta, 0.0, _theta_reference),
])
def test_updates_equal_statsforecast_forward_with_the_fitted_parameters(
        name: str, cls: type[LiveModel], trend: float, reference: Callable) -> None:
    y = data(trend=trend)
    model = fitted(name, y.iloc[:FIT])
    live = live_model(model, y.iloc[:FIT])
    assert isinstance(live, cls)
    # theta's intervals are quantiles of 200 simulated paths, float32 in statsforecast, float64 here: within 1e-6
    # relative on these data (no bound near zero; in general 1e-6 of the paths' scale: test_model_algebra.py).
    rtol = 1e-6 if name == "theta" else TOLERANCE
    assert_same(live.forecast(H), model.predict(H), rtol)  # before any update: the fitted model's own forecast
    fold(live, y.to_numpy()[FIT:])
    assert_same(live.forecast(H), reference(model, y), rtol)


def test_arima_with_drift_keeps_counting_time() -> None:
    rng = np.random.default_rng(2)
    values = np.cumsum(rng.normal(1.0, 1.0, FIT + NEW))
    y = pd.Series(values, index=pd.date_range("2000-01-01", periods=len(values), freq="D"))
    model = get_model_class("arima")(season_length=1).fit(y.iloc[:FIT])
    assert "drift" in model.params()["order"]
    live = live_model(model, y.iloc[:FIT])
    fold(live, values[FIT:])
    assert_same(live.forecast(H), _arima_reference(model, y))


def test_exponential_smoothing_refits_every_n_points_on_the_tail_in_a_worker_or_in_place() -> None:
    y = data()
    model = fitted("exponentialsmoothing", y.iloc[:FIT])
    live = live_model(model, y.iloc[:FIT])
    assert isinstance(live, LiveRefit)
    fold(live, y.to_numpy()[FIT:FIT + 3])  # between refits: the last fit's forecast moves on
    assert_same(live.forecast(H), Prediction(model.predict(H + 3).mean[3:],
                                             {lv: (lo[3:], hi[3:]) for lv, (lo, hi) in
                                              model.predict(H + 3).intervals.items()}))
    # FIT + REFIT_EVERY points: the stream goes on past data()'s end with more of the same kind.
    extra = data(seed=9).iloc[:REFIT_EVERY]
    more = pd.concat([y, extra.set_axis(pd.date_range(y.index[-1], periods=len(extra) + 1, freq="MS")[1:])])
    fold(live, more.to_numpy()[FIT + 3:FIT + REFIT_EVERY + 2])
    reference = fitted("exponentialsmoothing", more.iloc[:FIT + REFIT_EVERY]).predict(H + 2 + 1)
    expected = Prediction(reference.mean[2:2 + H], {lv: (lo[2:2 + H], hi[2:2 + H])
                                                    for lv, (lo, hi) in reference.intervals.items()})
    # What the live service does: the due fit made in a worker from the state (refit_live), its answer installed.
    # The due point is the data's: the same state whether the points came one by one or in one batch.
    batched = live_model(model, y.iloc[:FIT])
    batched.update(more.to_numpy()[FIT:FIT + REFIT_EVERY + 2])
    assert isinstance(batched, LiveRefit) and batched.to_bytes() == live.to_bytes()
    assert batched.needs_fit() and batched.due == REFIT_EVERY
    assert not batched.install(Ahead(0, model.predict(H)))  # an answer overtaken by the data is never used
    assert batched.install(refit_live(RefitWork(batched.to_bytes(), H + REFIT_EVERY + 1)))
    batched._fit = None  # type: ignore[method-assign] # a forecast that fitted would fail: the answer is all it uses
    assert not batched.needs_fit()
    assert_same(batched.forecast(H), expected)
    assert_same(batched.forecast(H - 1, tail=[1.0]), Prediction(reference.mean[3:3 + H - 1], {
        lv: (lo[3:3 + H - 1], hi[3:3 + H - 1]) for lv, (lo, hi) in reference.intervals.items()}))


@pytest.mark.parametrize("name", ["naive", "seasonal_naive", "autoets", "arima", "theta", "exponentialsmoothing"])
def test_state_persists_in_a_few_kb_and_resumes_exactly(name: str) -> None:
    y = data(seed=4)
    live = live_model(fitted(name, y.iloc[:FIT]), y.iloc[:FIT])
    fold(live, y.to_numpy()[FIT:FIT + 10])
    saved = live.to_bytes()
    assert len(saved) < 16_000, len(saved)
    resumed = load(saved)
    for model in (live, resumed):
        fold(model, y.to_numpy()[FIT + 10:])
    a, b = live.forecast(H), resumed.forecast(H)
    np.testing.assert_array_equal(a.mean, b.mean)
    for lv in LEVELS:
        np.testing.assert_array_equal(a.intervals[lv][0], b.intervals[lv][0])


@pytest.mark.parametrize("name", ["naive", "autoets", "arima"])
def test_a_provisional_tail_is_forecast_from_but_not_kept(name: str) -> None:
    y = data(seed=5)
    live = live_model(fitted(name, y.iloc[:FIT]), y.iloc[:FIT])
    before = live.to_bytes()
    tail = y.to_numpy()[FIT:FIT + 3]
    with_tail = live.forecast(H, tail=tail)
    assert live.to_bytes() == before
    live.update(tail)
    np.testing.assert_array_equal(with_tail.mean, live.forecast(H).mean)


def test_forecasts_are_clipped_and_rounded_as_a_csvs() -> None:
    config = make_config(model_parameters={"min_values": {"s": 0.0}, "max_values": {"_all": 10.0},
                                           "round_to_integer": "s"})
    bounds = _bounds(config, "s")  # what LiveSeries.revise adjusts each revision's arrays with
    mean, lower = _adjust_by(np.array([-1.2, 3.4, 12.0]), bounds), _adjust_by(np.array([-5.0, 1.6, 9.0]), bounds)
    assert mean.tolist() == [0.0, 3.0, 10.0]
    assert lower.tolist() == [0.0, 2.0, 9.0]


def test_the_quantile_cache_wraps_only_the_statsforecast_it_was_written_for() -> None:
    import statsforecast
    from statsforecast import utils

    from forecasting.models.quantiles import STATSFORECAST_QUANTILES, cache_normal_quantiles

    before = utils._quantiles(np.asarray([80, 95]))
    cache_normal_quantiles()
    assert statsforecast.__version__ == STATSFORECAST_QUANTILES, "pinned statsforecast moved: re-check the wrapper"
    assert getattr(utils._quantiles, "cached", False)
    assert np.array_equal(utils._quantiles(np.asarray([80, 95])), before)


@pytest.mark.parametrize("model_type", ["STM", "OTM", "DSTM", "DOTM"])
@pytest.mark.parametrize("m, n, level", [(12, 150, 100.0), (12, 150, -40.0), (7, 1_000, 100.0), (1, 60, 100.0)])
def test_theta_equals_statsforecast_on_seasonal_additive_and_plain_data(
        model_type: str, m: int, n: int, level: float) -> None:
    # LiveTheta fitted on the first half, the second half folded point by point, against statsforecast's filter
    # and forecast on all the points with the fit's parameters and decomposition: a multiplicative decomposition
    # (positive seasonal data), an additive one (negative values), a long stream, no seasonality test (m = 1);
    # every model type. 1e-6 relative on these data (statsforecast's float32 paths; no bound near zero).
    from statsforecast._lib import theta as _theta
    from statsforecast.theta import auto_theta, switch_theta

    from forecasting.live.models.theta import _fast

    assert _fast(), "pinned statsforecast moved: re-check forecasting.live.models.theta"
    rng = np.random.default_rng(n + m)
    t = np.arange(n)
    y = level + 10 * np.sin(2 * np.pi * t / max(m, 2)) + np.cumsum(rng.normal(0, 1, n))
    fit = auto_theta(y[: n // 2], m, model=model_type)
    assert fit.get("decomposition_type") == (None if m == 1 else "multiplicative" if level > 0 else "additive")
    # this model type's fit (the model class picks the best type); from_fitted reads only statsforecast's dict
    live = LiveTheta.from_fitted(SimpleNamespace(_model=SimpleNamespace(model_=fit)), y[: n // 2])  # type: ignore
    fold(live, y[n // 2:])
    assert_same(live.forecast(H), theta_reference(fit, y, H), 1e-6)
    if model_type in ("DSTM", "DOTM"):  # their state rows: statsforecast's C++ expressions in its order
        factors = np.asarray(fit["seas_forecast"]["mean"])[(t - n // 2) % m] if m > 1 else np.ones(n)
        model_y = y / factors if level > 0 else y - factors
        _, _, states, _ = _theta.pegels_resid(model_y, switch_theta(model_type), fit["par"]["initial_smoothed"],
                                              fit["par"]["alpha"], 2.0 if model_type == "DSTM" else
                                              fit["par"]["theta"], 3)
        assert [live.level, live.meany, live.A, live.B] == states[-1, :4].tolist()


def test_theta_keeps_a_fixed_size_state_however_long_the_stream() -> None:
    y = data(seed=6)
    live = live_model(fitted("theta", y.iloc[:FIT]), y.iloc[:FIT])
    assert isinstance(live, LiveTheta) and live.season is not None  # data() is seasonal: its decomposition kept
    size = len(live.to_bytes())
    fold(live, np.resize(y.to_numpy(), 20_000))
    assert len(live.to_bytes()) <= size + 16  # a few more digits in its counters at most
    assert np.isfinite(live.forecast(H).mean).all()


def test_timex_arima_search_is_followed_by_refits() -> None:
    """arima_seasonal false fits statsmodels' SARIMAX (TIMEX's search), which has no Kalman step here: the live
    form refits, with the same option, starting from the fitted model's own forecast."""
    y = data().iloc[:48]
    model = get_model_class("arima")(season_length=12, options={"seasonal": False}).fit(y)
    live = live_model(model, y)
    assert isinstance(live, LiveRefit)
    assert_same(live.forecast(H), model.predict(H))
    assert load(live.to_bytes()).to_bytes() == live.to_bytes()
    assert b"seasonal" in live.to_bytes()  # the option is kept for the refits
