"""Choosing the best unit per model and per series (TIMEX: lowest main accuracy estimator), and the two-phase
protocol around it that the core pipeline, the predictor and the validator all follow:

1. every unit is validated (scored on the held-out points, no final forecast);
2. `refits_needed`: each model's best unit gets a final refit on window + test points (`final_refit`: made
   from the unit's spec alone, which is what travels between services);
3. `choose_final`: the results with their refits folded in (`with_refits`: a refit counts for the unit it
   was made for, matched by spec; a failed refit disqualifies its unit) give the series' choice.
Historical units (forecasting.historical) are never part of the choice.

With `model_parameters.combination` (opt-in), `choose_final`'s answer is the combination of the k models
that validated best (`combine`): the per-step median, mean or trimmed mean of their final forecasts and of
their interval bounds. It is made from the refits the protocol asks for: each model's best unit, or with
`combination.per_transformation` each (model, transformation) pair's best unit (`candidates`; `refit_slot`
names the refit each one gets), so every path that calls `refits_needed` and `choose_final` gives the same
combination.

Order-independent: the choice depends only on the set of results. Ties break deterministically by the
config's order of models and transformations, then by the smaller window (as TIMEX's stable sort)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from forecasting.config import TimexConfig
from forecasting.historical import drop_history
from forecasting.metrics import score
from forecasting.units import Forecast, UnitResult, UnitSpec, refit_unit

_REFIT_ERROR = "final refit: "
COMBINATION = "combination"  # the model name of a combined answer (not a model of the config)


@dataclass
class SeriesChoice:
    best: UnitResult | None = None
    per_model: dict[str, UnitResult] = field(default_factory=dict)
    comparison: list[UnitResult] = field(default_factory=list)
    errors: list[UnitResult] = field(default_factory=list)
    data_error: str | None = None  # the series could not be used at all (set by the pipeline)
    # What the pipeline adds, as the services' answer carries it (BestModel): the series' cross-correlations
    # and the multivariate stage (xcorr_parameters: `kept` says which stage `best` is), the historical
    # predictions (historical_prediction_parameters), and warnings in plain words (the failures topic's).
    xcorr: dict[str, Any] | None = None
    univariate: UnitResult | None = None
    multivariate: UnitResult | None = None
    kept: str | None = None
    historical: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": self.best.to_dict() if self.best else None,
            "per_model": {m: r.to_dict() for m, r in self.per_model.items()},
            "comparison": [r.to_dict() for r in self.comparison],
            "errors": [r.to_dict() for r in self.errors],
            "data_error": self.data_error,
            "xcorr": self.xcorr,
            "univariate": self.univariate.to_dict() if self.univariate else None,
            "multivariate": self.multivariate.to_dict() if self.multivariate else None,
            "kept": self.kept,
            "historical": self.historical,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesChoice:
        return cls(
            best=UnitResult.from_dict(d["best"]) if d.get("best") else None,
            per_model={m: UnitResult.from_dict(r) for m, r in d.get("per_model", {}).items()},
            comparison=[UnitResult.from_dict(r) for r in d.get("comparison", [])],
            errors=[UnitResult.from_dict(r) for r in d.get("errors", [])],
            data_error=d.get("data_error"),
            xcorr=d.get("xcorr"),
            univariate=UnitResult.from_dict(d["univariate"]) if d.get("univariate") else None,
            multivariate=UnitResult.from_dict(d["multivariate"]) if d.get("multivariate") else None,
            kept=d.get("kept"),
            historical=d.get("historical"),
            notes=list(d.get("notes") or []),
        )


def _rank(config: TimexConfig) -> tuple[dict[str, int], dict[str, int]]:
    return (
        {m: i for i, m in enumerate(config.model_names)},
        {t: i for i, t in enumerate(config.transformations)},
    )


def _orders(config: TimexConfig) -> tuple[Callable[[UnitResult], tuple[Any, ...]],
                                           Callable[[UnitResult], tuple[Any, ...]]]:
    """(spec order: the config's order of models and transformations, then the window; quality: the main
    estimator, ties broken by the spec order)."""
    models, transformations = _rank(config)
    estimator = config.model_parameters.main_accuracy_estimator

    def spec_key(r: UnitResult) -> tuple[int, str, int, str, int]:
        s = r.spec
        return (
            models.get(s.model, len(models)),
            s.model,
            transformations.get(s.transformation, 99),
            s.transformation,
            s.window,
        )

    def quality(r: UnitResult) -> tuple[Any, ...]:
        return (score(r.metrics, estimator), *spec_key(r))

    return spec_key, quality


def _best_of_each(config: TimexConfig, ok: Iterable[UnitResult], group: Callable[[UnitSpec], str]
                  ) -> dict[str, UnitResult]:
    """The best unit of each group of `ok` (validated units), in spec order."""
    spec_key, quality = _orders(config)
    best: dict[str, UnitResult] = {}
    for r in sorted(ok, key=quality):
        best.setdefault(group(r.spec), r)
    return dict(sorted(best.items(), key=lambda item: spec_key(item[1])))


def choose_best(config: TimexConfig, results: Iterable[UnitResult]) -> SeriesChoice:
    spec_key, quality = _orders(config)
    every = list(results)
    ok = sorted((r for r in every if r.error is None), key=spec_key)
    errors = sorted((r for r in every if r.error is not None), key=spec_key)
    per_model = _best_of_each(config, ok, lambda s: s.model)
    best = min(per_model.values(), key=quality) if per_model else None
    return SeriesChoice(best=best, per_model=per_model, comparison=ok, errors=errors)


def _per_transformation(config: TimexConfig) -> bool:
    combination = config.model_parameters.combination
    return combination is not None and combination.per_transformation


def refit_slot(config: TimexConfig, spec: UnitSpec) -> str:
    """The candidate a unit stands for, which has one final refit at most: its model, or with
    `combination.per_transformation` its model and transformation (`model|transformation`)."""
    return f"{spec.model}|{spec.transformation}" if _per_transformation(config) else spec.model


def refit_slots(config: TimexConfig) -> list[str]:
    """Every slot the config's units can stand for (`refit_slot`), in the config's order."""
    if not _per_transformation(config):
        return list(config.model_names)
    return [f"{m}|{t}" for m in config.model_names for t in config.transformations_of(m)]


def candidates(config: TimexConfig, choice: SeriesChoice) -> dict[str, UnitResult]:
    """Each slot's best validated unit (`refit_slot`), in spec order: `choice.per_model` unless the
    combination takes each (model, transformation) pair (a superset of it then: a model's best unit is the
    best of its own pair)."""
    if not _per_transformation(config):
        return choice.per_model
    return _best_of_each(config, choice.comparison, lambda s: refit_slot(config, s))


def ranked(config: TimexConfig, choice: SeriesChoice) -> list[UnitResult]:
    """Each candidate (`candidates`), the best validated first (ties: spec order, as `choose_best`)."""
    estimator = config.model_parameters.main_accuracy_estimator
    every = candidates(config, choice)
    order = {slot: i for i, slot in enumerate(every)}  # _best_of_each keeps them in spec order
    return sorted(every.values(), key=lambda r: (score(r.metrics, estimator), order[refit_slot(config, r.spec)]))


def _combine_values(rows: list[list[float] | None], statistic: str) -> list[float] | None:
    """Each step's `statistic` of `rows`, the members' values best-validated first (the order
    `rank_weighted_mean` weighs by)."""
    if any(r is None for r in rows):
        return None
    stack = np.asarray(rows, dtype=float)
    if statistic == "median":
        return np.median(stack, axis=0).tolist()
    if statistic == "trimmed_mean" and len(stack) > 2:  # each step's highest and lowest left out
        return np.mean(np.sort(stack, axis=0)[1:-1], axis=0).tolist()
    if statistic == "rank_weighted_mean":  # weights k, k - 1, ..., 1: the rows come best first
        return np.average(stack, axis=0, weights=np.arange(len(stack), 0, -1, dtype=float)).tolist()
    return np.mean(stack, axis=0).tolist()


def combine(config: TimexConfig, choice: SeriesChoice) -> SeriesChoice:
    """`choice` answered by the combination `model_parameters.combination` asks for: the per-step statistic
    of the final forecasts of the k best-validated models that have one (fewer when fewer have; none below
    two: `choice` as it is). Its intervals are the same statistic of the members' bounds (an approximation:
    a level's band where every member has one). The combined unit is the answer (`best`), a row of the
    comparison and an entry of `per_model`; its params name the members and the statistic; it has no
    validation metrics of its own (the members are scored, the combination is not)."""
    spec = config.model_parameters.combination
    if spec is None:
        return choice
    members = [r for r in ranked(config, choice) if r.forecast is not None][: spec.k]
    if len(members) < 2:
        return choice
    forecasts = [r.forecast for r in members if r.forecast is not None]
    bands = {key: _combine_values([getattr(f, key) for f in forecasts], spec.statistic)
             for key in ("lower_80", "upper_80", "lower_95", "upper_95")}
    forecast = Forecast(timestamps=list(forecasts[0].timestamps),
                        yhat=_combine_values([f.yhat for f in forecasts], spec.statistic) or [], **bands)
    combined = UnitResult(
        spec=UnitSpec(COMBINATION, "none", max(r.spec.window for r in members)),
        test_forecast=_combine_values([r.test_forecast or None for r in members], spec.statistic) or [],
        forecast=forecast, fit_seconds=sum(r.fit_seconds for r in members),
        params={"statistic": spec.statistic, "k": str(spec.k),
                "members": ",".join(refit_slot(config, r.spec) for r in members)})
    return replace(choice, best=combined, per_model={**choice.per_model, COMBINATION: combined},
                   comparison=[*choice.comparison, combined])


# --- the two-phase protocol ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RefitPlan:
    """What a set of validation results needs before the choice."""

    specs: list[UnitSpec]  # every final refit the choice needs (each candidate's best unit, in spec order)
    missing: list[int]  # positions in `specs` with no refit made for that unit among those in
    stale: list[UnitResult]  # refits in that were made for another unit than any chosen now: to drop


def refits_needed(config: TimexConfig, results: Iterable[UnitResult], refits: Iterable[UnitResult] = (),
                  best_only: bool = False) -> RefitPlan:
    """Phase 1 → 2: the final refits `results` (validation outcomes) need: each candidate's best unit
    (`candidates`: each model's, or each (model, transformation) pair's), or, with `best_only`, the best unit
    alone (the multivariate stage). `refits`: those already in (a predictor that
    ran a whole series refits it in the same record); one made for another unit is `stale`."""
    choice = choose_best(config, drop_history(results)[0])
    chosen = [choice.best] if best_only else list(candidates(config, choice).values())
    specs = [r.spec for r in chosen if r is not None]
    refits = list(refits)
    have = {r.spec for r in refits}
    return RefitPlan(specs=specs, missing=[i for i, s in enumerate(specs) if s not in have],
                     stale=[r for r in refits if r.spec not in specs])


def final_refit(config: TimexConfig, series: pd.Series, spec: UnitSpec,
                regressors: pd.DataFrame | None = None) -> UnitResult:
    """Phase 2: the final refit of the unit `spec` names, from the spec alone (its params all `final_`),
    as a predictor runs it from a refit Dataset; `with_refits` folds it into the validated unit."""
    return refit_unit(config, series, UnitResult(spec), regressors)


def fold(unit: UnitResult, refit: UnitResult | None) -> UnitResult:
    """`unit` carrying its final refit (forecast, the refit's params, both times), when `refit` was made for
    it (same spec) and it validated; a failed refit disqualifies it (its error, said once as a refit's)."""
    if refit is None or unit.error is not None or refit.spec != unit.spec:
        return unit
    error = refit.error
    if error is not None and not error.startswith(_REFIT_ERROR):
        error = _REFIT_ERROR + error  # a failure of the refit's record (a limit), not of its fit
    return replace(unit, forecast=refit.forecast, params={**unit.params, **refit.params},
                   fit_seconds=unit.fit_seconds + refit.fit_seconds, error=error)


def with_refits(results: Iterable[UnitResult], refits: Iterable[UnitResult]) -> list[UnitResult]:
    """The results with each refit folded into the unit it was made for (refits of other units ignored)."""
    by_spec = {r.spec: r for r in refits}
    return [fold(r, by_spec.get(r.spec)) for r in results]


def choose_final(config: TimexConfig, results: Iterable[UnitResult], refits: Iterable[UnitResult] = ()
                 ) -> SeriesChoice:
    """Phase 2 → the answer: the choice over the ordinary results with their refits folded in (without
    refits: the choice the refits are asked for), combined when the config asks (`combine`)."""
    return combine(config, choose_best(config, with_refits(drop_history(results)[0], refits)))
