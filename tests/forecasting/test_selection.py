from __future__ import annotations

import math
import random

from forecasting.selection import (
    SeriesChoice,
    choose_best,
    choose_final,
    fold,
    refit_slot,
    refit_slots,
    refits_needed,
    with_refits,
)
from forecasting.units import Forecast, UnitResult, UnitSpec, plan_units, run_unit
from tests.plugins.core_series import make_config, random_walk


def unit(model: str, transformation: str, window: int, mae: float, rmse: float = 1.0) -> UnitResult:
    return UnitResult(UnitSpec(model, transformation, window), metrics={"MAE": mae, "RMSE": rmse})


CONFIG = make_config(
    model_parameters={"models": "arima,naive", "possible_transformations": "none,log_modified"}
)


def test_best_per_model_and_overall() -> None:
    results = [
        unit("arima", "none", 10, 3.0),
        unit("arima", "log_modified", 20, 2.0),
        unit("naive", "none", 10, 2.5),
        unit("naive", "none", 20, math.nan),
        UnitResult(UnitSpec("naive", "log_modified", 10), error="boom"),
    ]
    choice = choose_best(CONFIG, results)
    assert choice.best is not None and choice.best.spec == UnitSpec("arima", "log_modified", 20)
    assert choice.per_model["naive"].spec == UnitSpec("naive", "none", 10)
    assert [r.error for r in choice.errors] == ["boom"] and len(choice.comparison) == 4


def test_main_estimator_decides() -> None:
    config = make_config(model_parameters={"models": "arima,naive", "main_accuracy_estimator": "rmse"})
    results = [unit("arima", "none", 10, mae=1.0, rmse=9.0), unit("naive", "none", 10, mae=2.0, rmse=3.0)]
    best = choose_best(config, results).best
    assert best is not None and best.spec.model == "naive"


def test_ties_break_by_config_order_then_smaller_window() -> None:
    results = [
        unit("naive", "none", 10, 1.0),
        unit("arima", "log_modified", 10, 1.0),
        unit("arima", "none", 20, 1.0),
        unit("arima", "none", 10, 1.0),
    ]
    choice = choose_best(CONFIG, results)
    assert choice.best is not None and choice.best.spec == UnitSpec("arima", "none", 10)


def test_order_independent_on_real_units() -> None:
    config = make_config(
        model_parameters={"models": "naive,mockup,theta", "possible_transformations": "none,log_modified"}
    )
    series = random_walk(40)
    results = [run_unit(config, series, spec, with_forecast=False) for spec in plan_units(config, series)]
    reference = choose_best(config, results).to_dict()
    rng = random.Random(5)
    for _ in range(5):
        rng.shuffle(results)
        assert choose_best(config, results).to_dict() == reference
    assert SeriesChoice.from_dict(reference).to_dict() == reference


FORECAST = Forecast(timestamps=["2001-01-01T00:00:00"], yhat=[1.0])


def test_refits_needed_names_each_models_best_and_which_refits_in_do_not_fit() -> None:
    results = [unit("arima", "none", 10, 3.0), unit("arima", "log_modified", 20, 2.0), unit("naive", "none", 10, 2.5),
               UnitResult(UnitSpec("naive", "none", 5, historical_end=30), metrics={"MAE": 0.1})]  # not chosen
    plan = refits_needed(CONFIG, results)
    assert plan.specs == [UnitSpec("arima", "log_modified", 20), UnitSpec("naive", "none", 10)]
    assert plan.missing == [0, 1] and plan.stale == []
    stale = UnitResult(UnitSpec("arima", "none", 10), forecast=FORECAST)
    plan = refits_needed(CONFIG, results, [stale, UnitResult(UnitSpec("naive", "none", 10), forecast=FORECAST)])
    assert plan.missing == [0] and plan.stale == [stale]
    assert refits_needed(CONFIG, results, best_only=True).specs == [UnitSpec("arima", "log_modified", 20)]
    assert refits_needed(CONFIG, [], best_only=True).specs == []


def test_a_refit_counts_for_its_own_unit_only() -> None:
    validated = UnitResult(UnitSpec("naive", "none", 10), metrics={"MAE": 1.0}, fit_seconds=1.0,
                           params={"train_start": "x", "order": "1"})
    refit = UnitResult(UnitSpec("naive", "none", 10), forecast=FORECAST, fit_seconds=0.5, params={"final_order": "2"})
    folded = fold(validated, refit)
    assert folded.forecast == FORECAST and folded.metrics == {"MAE": 1.0} and folded.fit_seconds == 1.5
    assert folded.params == {"train_start": "x", "order": "1", "final_order": "2"} and folded.error is None
    other = UnitResult(UnitSpec("naive", "none", 20), forecast=FORECAST)
    assert fold(validated, other) is validated and with_refits([validated], [other]) == [validated]
    failed = UnitResult(UnitSpec("naive", "none", 10), error="boom")
    assert fold(failed, refit) is failed  # a unit that failed its validation has nothing to refit


def test_a_failed_refit_disqualifies_its_unit_and_says_so_once() -> None:
    results = [unit("naive", "none", 10, 1.0), unit("naive", "none", 20, 2.0), unit("arima", "none", 10, 3.0)]
    fit_failure = UnitResult(UnitSpec("naive", "none", 10), error="final refit: model 'naive' failed: boom")
    limit = UnitResult(UnitSpec("naive", "none", 10), error="the unit went over its time limit")
    for refit, said in ((fit_failure, "final refit: model 'naive' failed: boom"),
                        (limit, "final refit: the unit went over its time limit")):
        choice = choose_final(CONFIG, results, [refit])
        assert [r.error for r in choice.errors] == [said]
        assert choice.per_model["naive"].spec == UnitSpec("naive", "none", 20)  # the next of its model


# --- the combination of the k best (opt-in: model_parameters.combination) -----------------------------------

def _refitted(model: str, mae: float, yhat: list[float], band: float | None = 1.0) -> UnitResult:
    """A validated unit with its final forecast folded in (80 % band ± band; no band when None)."""
    lower = [v - band for v in yhat] if band is not None else None
    upper = [v + band for v in yhat] if band is not None else None
    return UnitResult(UnitSpec(model, "none", 10 + len(model)), metrics={"MAE": mae}, test_forecast=[mae, mae],
                      forecast=Forecast(["t1", "t2"], yhat, lower_80=lower, upper_80=upper))


FOUR = make_config(model_parameters={"models": "naive,theta,autoets,autoces"})
CANDIDATES = [_refitted("naive", 4.0, [100.0, 100.0]), _refitted("theta", 1.0, [10.0, 20.0]),
              _refitted("autoets", 2.0, [12.0, 18.0], band=3.0), _refitted("autoces", 3.0, [20.0, 40.0])]


def _combined(statistic: str, k: int, results: list[UnitResult] = CANDIDATES) -> SeriesChoice:
    config = make_config(model_parameters={"models": "naive,theta,autoets,autoces",
                                           "combination": {"k": k, "statistic": statistic}})
    return choose_final(config, results)


def test_the_median_of_the_k_best_validated_is_the_answer_with_its_members_named() -> None:
    choice = _combined("median", 3)
    best = choice.best
    assert best is not None and best.forecast is not None and best.spec.model == "combination"
    assert best.forecast.yhat == [12.0, 20.0]  # theta, autoets, autoces (naive validated worst)
    assert best.params == {"statistic": "median", "k": "3", "members": "theta,autoets,autoces"}
    assert best.forecast.lower_80 == [9.0, 19.0] and best.forecast.upper_80 == [15.0, 21.0]  # per-step medians
    assert best.forecast.lower_95 is None and best.metrics == {}  # no member had a 95 % band; not validated
    assert choice.per_model["combination"] is best and choice.comparison[-1] is best
    assert [m for m in choice.per_model if m != "combination"] == ["naive", "theta", "autoets", "autoces"]


def test_the_mean_of_the_two_best() -> None:
    best = _combined("mean", 2).best
    assert best is not None and best.forecast is not None
    assert best.forecast.yhat == [11.0, 19.0] and best.forecast.upper_80 == [13.0, 21.0]
    assert best.params["members"] == "theta,autoets"


def test_the_trimmed_mean_leaves_out_each_steps_highest_and_lowest() -> None:
    best = _combined("trimmed_mean", 4).best
    assert best is not None and best.forecast is not None
    assert best.forecast.yhat == [16.0, 30.0]  # step 1: 10, 12, 20, 100 → (12 + 20) / 2; step 2: 18, 20, 40, 100
    assert _combined("trimmed_mean", 2).best.forecast.yhat == [11.0, 19.0]  # type: ignore[union-attr]  # two: the mean


def test_the_rank_weighted_mean_weighs_the_members_by_their_validation_rank() -> None:
    best = _combined("rank_weighted_mean", 3).best
    assert best is not None and best.forecast is not None
    # theta (MAE 1) weight 3, autoets (2) weight 2, autoces (3) weight 1; naive (4) is not among the 3
    assert best.forecast.yhat == [(3 * 10.0 + 2 * 12.0 + 20.0) / 6, (3 * 20.0 + 2 * 18.0 + 40.0) / 6]
    assert best.params["members"] == "theta,autoets,autoces"
    assert best.forecast.upper_80 == [(3 * 11.0 + 2 * 15.0 + 21.0) / 6, (3 * 21.0 + 2 * 21.0 + 41.0) / 6]


def test_k_above_the_models_with_a_forecast_takes_those_and_one_alone_is_no_combination() -> None:
    assert _combined("median", 9).best.params["members"] == "theta,autoets,autoces,naive"  # type: ignore[union-attr]
    without = [CANDIDATES[1], UnitResult(UnitSpec("autoets", "none", 10), metrics={"MAE": 0.5})]  # no refit yet
    alone = _combined("median", 3, without)
    assert alone.best is without[1] and "combination" not in alone.per_model  # the choice as it was


def test_without_the_key_the_choice_is_the_best_single_model() -> None:
    choice = choose_final(FOUR, CANDIDATES)
    assert choice.best is CANDIDATES[1] and "combination" not in choice.per_model
    assert choice.to_dict() == choose_best(FOUR, CANDIDATES).to_dict()


def test_a_combination_config_is_checked() -> None:
    import pytest

    from forecasting.config import ConfigError, parse_config

    base = {"input_parameters": {"source_data_url": "upload:x.csv"}, "model_parameters": {"models": "naive,theta"}}
    for bad, message in (({"k": 1}, "greater than or equal to 2"), ({"statistic": "mode"}, "unknown statistic")):
        with pytest.raises(ConfigError, match=message):
            parse_config({**base, "model_parameters": {"models": "naive,theta", "combination": bad}})
    parsed = parse_config({**base, "model_parameters": {"models": "naive,theta", "combination": {}}})
    assert parsed.warnings == [] and parsed.config.model_parameters.combination is not None
    assert parse_config(parsed.config.to_json()).config == parsed.config
    assert "combination" not in parse_config(base).config.to_json()  # existing configs round-trip unchanged


# --- members per (model, transformation): combination.per_transformation ------------------------------------

PAIRS = make_config(model_parameters={"models": "theta,autoets", "possible_transformations": "none,log",
                                      "combination": {"k": 3, "statistic": "median", "per_transformation": True}})


def _pair(model: str, transformation: str, window: int, mae: float) -> UnitResult:
    return UnitResult(UnitSpec(model, transformation, window), metrics={"MAE": mae})


PAIR_UNITS = [_pair("theta", "none", 10, 2.0), _pair("theta", "none", 20, 1.5), _pair("theta", "log", 10, 1.0),
              _pair("autoets", "none", 10, 3.0), _pair("autoets", "log", 10, 4.0), _pair("autoets", "log", 20, 5.0)]


def test_per_transformation_asks_a_refit_of_each_pairs_best_unit() -> None:
    plan = refits_needed(PAIRS, PAIR_UNITS)
    assert plan.specs == [UnitSpec("theta", "none", 20), UnitSpec("theta", "log", 10),
                          UnitSpec("autoets", "none", 10), UnitSpec("autoets", "log", 10)]
    assert [refit_slot(PAIRS, s) for s in plan.specs] == ["theta|none", "theta|log", "autoets|none", "autoets|log"]
    assert refit_slots(PAIRS) == ["theta|none", "theta|log", "autoets|none", "autoets|log"]
    # Without it, one refit a model (its best unit), slots named by model, as before.
    plain = make_config(model_parameters={"models": "theta,autoets", "possible_transformations": "none,log",
                                          "combination": {"k": 3}})
    assert refits_needed(plain, PAIR_UNITS).specs == [UnitSpec("theta", "log", 10), UnitSpec("autoets", "none", 10)]
    assert refit_slots(plain) == ["theta", "autoets"] and refit_slot(plain, UnitSpec("theta", "log", 10)) == "theta"


def test_per_transformation_members_are_the_k_best_pairs() -> None:
    yhat = {("theta", "none"): [10.0, 10.0], ("theta", "log"): [20.0, 30.0], ("autoets", "none"): [40.0, 20.0],
            ("autoets", "log"): [0.0, 0.0]}
    refits = [UnitResult(s, forecast=Forecast(["t1", "t2"], yhat[(s.model, s.transformation)]))
              for s in refits_needed(PAIRS, PAIR_UNITS).specs]
    choice = choose_final(PAIRS, PAIR_UNITS, refits)
    best = choice.best
    assert best is not None and best.forecast is not None and best.spec.model == "combination"
    assert best.params["members"] == "theta|log,theta|none,autoets|none"  # autoets on logs validated worst
    assert best.forecast.yhat == [20.0, 20.0]
    assert set(choice.per_model) == {"theta", "autoets", "combination"}  # per_model stays one unit a model
    assert choice.per_model["theta"].spec == UnitSpec("theta", "log", 10)


# --- transformations per model: model_parameters.model_transformations --------------------------------------

def test_model_transformations_fit_a_listed_model_with_its_own_and_the_others_with_possible_transformations() -> None:
    import pandas as pd
    import pytest

    from forecasting.config import ConfigError, parse_config

    config = make_config(model_parameters={
        "models": "theta,autoces", "possible_transformations": "none,log", "delta_training_percentage": 100,
        "model_transformations": {"AutoCES": "log,sqrt"},
        "combination": {"k": 4, "statistic": "rank_weighted_mean", "per_transformation": True}})
    assert config.transformations == ["none", "log", "sqrt"]  # spec order: possible_transformations first
    assert refit_slots(config) == ["theta|none", "theta|log", "autoces|log", "autoces|sqrt"]
    series = pd.Series(range(1, 41), index=pd.date_range("2020-01-01", periods=40, freq="MS"), dtype=float)
    assert [(s.model, s.transformation) for s in plan_units(config, series)] == [
        ("theta", "none"), ("theta", "log"), ("autoces", "log"), ("autoces", "sqrt")]
    assert parse_config(config.to_json()).config == config  # round-trips
    base = {"input_parameters": {"source_data_url": "upload:x.csv"}}
    for bad, message in (({"arima": "log"}, "not in models"), ({"theta": "cube"}, "unknown transformation"),
                         ({"theta": ""}, "at least one")):
        with pytest.raises(ConfigError, match=message):
            parse_config({**base, "model_parameters": {"models": "naive,theta", "model_transformations": bad}})
    assert "model_transformations" not in make_config().to_json()  # existing configs unchanged
