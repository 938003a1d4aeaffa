from __future__ import annotations

import math
import random

from forecasting.selection import SeriesChoice, choose_best
from forecasting.units import UnitResult, UnitSpec, plan_units, run_unit
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
