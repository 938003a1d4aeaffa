from __future__ import annotations

import math
import random

from forecasting.selection import SeriesChoice, choose_best, choose_final, fold, refits_needed, with_refits
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
