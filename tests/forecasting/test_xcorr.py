"""Cross-correlation as TIMEX 1.2.3 computes it, checked against direct numpy/scipy computations, and the
`xcorr_parameters` section of the config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecasting.config import ConfigError, parse_config
from forecasting.xcorr import (
    MAX_CELLS,
    MODES,
    XcorrSettings,
    best_lag,
    lags_of,
    request_xcorr,
    settings_of,
    xcorr_per_series,
)
from tests.plugins.core_series import BASE

K, L, N = 3, 6, 80


def shifted_pair(k: int = K, n: int = N) -> dict[str, pd.Series]:
    """B is A shifted forward by k steps (b[t] = a[t + k]): B leads A, as in TIMEX's docstring example."""
    rng = np.random.default_rng(7)
    y = np.sin(np.linspace(0, 6 * np.pi, n + k)) + rng.normal(0, 0.3, n + k)
    index = pd.date_range("2020-01-01", periods=n, freq="D")
    return {"a": pd.Series(y[:n], index=index, name="a"), "b": pd.Series(y[k:k + n], index=index, name="b")}


def settings(modes: tuple[str, ...] = MODES, threshold: float = 0.5) -> XcorrSettings:
    return XcorrSettings(max_lags=L, modes=modes, mode_target=modes[0], threshold=threshold)


@pytest.mark.parametrize("mode", MODES)
def test_shifted_series_peak_at_lag_k_in_every_mode(mode: str) -> None:
    result = xcorr_per_series(shifted_pair(), settings((mode,)))
    a, b = result["a"], result["b"]
    assert a.lags[mode] == list(range(-L, L + 1))
    assert best_lag(a.modes[mode]["b"], a.lags[mode])[0] == K  # type: ignore[index]
    assert best_lag(b.modes[mode]["a"], b.lags[mode])[0] == -K  # type: ignore[index]
    # B leads A: B is a regressor of A (lag >= 0), not the other way round.
    assert a.regressors == ["b"] and b.regressors == []


def _direct(x: np.ndarray, y: np.ndarray, lag: int, mode: str) -> float:
    """The other series shifted by `lag` (pandas' shift: y moves later), the gap filled with 0."""
    shifted = np.zeros_like(y)
    if lag >= 0:
        shifted[lag:] = y[:len(y) - lag]
    else:
        shifted[:lag] = y[-lag:]
    if mode == "pearson":
        return float(np.corrcoef(x, shifted)[0, 1])
    if mode == "spearman":
        return float(stats.spearmanr(x, shifted).statistic)
    return float(stats.kendalltau(x, shifted, variant="b").statistic)


@pytest.mark.parametrize("mode", ["pearson", "kendall", "spearman"])
def test_values_match_a_direct_computation(mode: str) -> None:
    pair = shifted_pair()
    got = xcorr_per_series(pair, settings((mode,)))["a"].modes[mode]["b"]
    x, y = pair["a"].to_numpy(), pair["b"].to_numpy()
    expected = [_direct(x, y, lag, mode) for lag in range(-L, L + 1)]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_matlab_normalized_matches_the_definition() -> None:
    pair = shifted_pair()
    got = xcorr_per_series(pair, settings(("matlab_normalized",)))["a"].modes["matlab_normalized"]["b"]
    x, y = pair["a"].to_numpy(), pair["b"].to_numpy()
    norm = np.sqrt(np.sum(x * x) * np.sum(y * y))
    # MatLab xcorr(x, y, 'normalized') at lag m: sum_n x[n + m] y[n] / (|x| |y|)
    expected = [sum(x[n + m] * y[n] for n in range(N) if 0 <= n + m < N) / norm for m in range(-L, L + 1)]
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_max_lags_beyond_the_series_is_clipped_as_timex_does() -> None:
    pair = {k: v.iloc[:5] for k, v in shifted_pair().items()}
    result = xcorr_per_series(pair, XcorrSettings(10, MODES, "pearson", 0.5))["a"]
    assert result.lags["pearson"] == list(range(-5, 6))  # pandas modes: -len..len
    assert result.lags["matlab_normalized"] == list(range(-4, 5))  # numpy full correlation: 2 len - 1
    assert all(len(result.modes[m]["b"]) == len(result.lags[m]) for m in MODES)
    assert lags_of("pearson", 3, 5) == [-3, -2, -1, 0, 1, 2, 3]


def test_series_of_different_dates_are_aligned_on_their_dates() -> None:
    pair = shifted_pair()
    # B known on fewer dates (its first 10 missing): the lag is still found from the dates it shares.
    pair["b"] = pair["b"].iloc[10:]
    result = xcorr_per_series(pair, settings(("pearson",)))
    assert best_lag(result["a"].modes["pearson"]["b"], result["a"].lags["pearson"])[0] == K  # type: ignore[index]


def test_threshold_and_negative_lag_rules() -> None:
    pair = shifted_pair()
    peak = best_lag(xcorr_per_series(pair, settings(("pearson",)))["a"].modes["pearson"]["b"], list(range(-L, L + 1)))
    assert peak is not None and 0.5 < abs(peak[1]) < 1
    # Strictly above the threshold, as TIMEX: a peak equal to it does not count.
    assert xcorr_per_series(pair, settings(("pearson",), threshold=abs(peak[1])))["a"].regressors == []
    noise = pd.Series(np.random.default_rng(1).normal(size=N), index=pair["a"].index, name="c")
    result = xcorr_per_series({**pair, "c": noise}, settings(("pearson",)))
    assert result["a"].regressors == ["b"] and result["c"].regressors == []
    assert xcorr_per_series({"a": pair["a"]}, settings()) == {}  # one series: nothing to correlate


def test_best_lag_skips_nan_and_keeps_the_first_tie() -> None:
    assert best_lag([float("nan"), 0.5, -0.5], [-1, 0, 1]) == (0, 0.5)
    assert best_lag([float("nan")], [0]) is None


def _parse(xcorr: dict) -> object:
    return parse_config({**BASE, "xcorr_parameters": xcorr}).config


def test_config_reads_both_spellings_and_defaults_the_target() -> None:
    code = _parse({"xcorr_max_lags": 4, "xcorr_extra_regressor_threshold": 0.7, "xcorr_mode": "pearson, kendall"})
    docs = _parse({"xcorr_max_lags": 4, "xcorr_extra_regressor_threshold": 0.7, "xcorr_modes": "pearson,kendall",
                   "xcorr_mode_target": "Kendall"})
    assert settings_of(code) == XcorrSettings(4, ("pearson", "kendall"), "pearson", 0.7)  # type: ignore[arg-type]
    assert settings_of(docs) == XcorrSettings(4, ("pearson", "kendall"), "kendall", 0.7)  # type: ignore[arg-type]
    again = parse_config(code.to_json()).config  # type: ignore[attr-defined]
    assert settings_of(again) == settings_of(code)  # type: ignore[arg-type]
    assert settings_of(parse_config(BASE).config) is None
    assert not any("xcorr" in w for w in parse_config({**BASE, "xcorr_parameters": {
        "xcorr_max_lags": 4, "xcorr_extra_regressor_threshold": 0.7}}).warnings)


@pytest.mark.parametrize(("xcorr", "field", "expected"), [
    ({"xcorr_extra_regressor_threshold": 0.7}, "xcorr_parameters.xcorr_max_lags", "required"),
    ({"xcorr_max_lags": 0, "xcorr_extra_regressor_threshold": 0.7}, "xcorr_parameters.xcorr_max_lags",
     "greater than or equal to 1"),
    ({"xcorr_max_lags": 3, "xcorr_extra_regressor_threshold": 1.5},
     "xcorr_parameters.xcorr_extra_regressor_threshold", "less than or equal to 1"),
    ({"xcorr_max_lags": 3, "xcorr_extra_regressor_threshold": 0.5, "xcorr_mode": "pearson,granger"},
     "xcorr_parameters.xcorr_mode", "cross-correlation mode 'granger' (TIMEX 1.2.3's Granger causality tests) is "
                                    "not offered here"),
    ({"xcorr_max_lags": 3, "xcorr_extra_regressor_threshold": 0.5, "xcorr_mode": "pearson,spurious"},
     "xcorr_parameters.xcorr_mode", "unknown cross-correlation mode 'spurious'"),
    ({"xcorr_max_lags": 3, "xcorr_extra_regressor_threshold": 0.5, "xcorr_mode": "pearson",
      "xcorr_mode_target": "kendall"}, "xcorr_parameters.xcorr_mode_target", "not one of the computed modes"),
    ({"xcorr_max_lags": 3, "xcorr_extra_regressor_threshold": 0.5, "xcorr_mode": "pearson",
      "xcorr_modes": "kendall"}, "xcorr_parameters.xcorr_modes", "differs from xcorr_mode"),
])
def test_config_errors_name_the_field(xcorr: dict, field: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(xcorr)
    assert any(e.field == field and expected in e.message for e in info.value.errors), info.value.errors


def test_same_values_and_lags_as_timex_1_2_3() -> None:
    """timex_xcorr/timex_1_2_3.json: TIMEX's own calc_all_xcorr on timex_xcorr/data.csv (make_reference.py)."""
    here = Path(__file__).parent / "timex_xcorr"
    frame = pd.read_csv(here / "data.csv", index_col="date", parse_dates=True)
    reference = json.loads((here / "timex_1_2_3.json").read_text())
    for lags, targets in reference.items():
        mine = xcorr_per_series({c: frame[c] for c in frame.columns}, XcorrSettings(int(lags), MODES, "pearson", 0.5))
        for target, by_mode in targets.items():
            for mode, expected in by_mode.items():
                assert mine[target].lags[mode] == expected.pop("lags"), (lags, target, mode)
                for other, values in expected.items():
                    np.testing.assert_allclose(mine[target].modes[mode][other], np.array(values, dtype=float),
                                               rtol=1e-12, atol=1e-12)


def test_cross_correlation_work_is_bounded_per_request() -> None:
    """Long series × many lags would pin the ingestion: past MAX_CELLS nothing is computed and the warning
    says why; a small request is computed."""
    config = _parse({"xcorr_max_lags": 100_000, "xcorr_extra_regressor_threshold": 0.5, "xcorr_mode": "kendall"})
    n = int((MAX_CELLS / (2 * 50 * 2)) ** 0.5) + 10  # two series just past the budget, lags clipped to n
    index = pd.date_range("2020-01-01", periods=n, freq="h")
    long = {name: pd.Series(np.arange(n, dtype=float), index=index, name=name) for name in ("a", "b")}
    found, warning = request_xcorr(config, long)
    assert found == {} and warning is not None and "more cross-correlation work" in warning
    assert "xcorr_max_lags" in warning
    found, warning = request_xcorr(config, {k: v.iloc[:50] for k, v in long.items()})
    assert warning is None and set(found) == {"a", "b"}
