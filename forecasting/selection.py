"""Choosing the best unit per model and per series (TIMEX: lowest main accuracy estimator).

Order-independent: the choice depends only on the set of results. Ties break deterministically by the
config's order of models and transformations, then by the smaller window (as TIMEX's stable sort)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from forecasting.config import TimexConfig
from forecasting.metrics import score
from forecasting.units import UnitResult


@dataclass
class SeriesChoice:
    best: UnitResult | None = None
    per_model: dict[str, UnitResult] = field(default_factory=dict)
    comparison: list[UnitResult] = field(default_factory=list)
    errors: list[UnitResult] = field(default_factory=list)
    data_error: str | None = None  # the series could not be used at all (set by the pipeline)

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": self.best.to_dict() if self.best else None,
            "per_model": {m: r.to_dict() for m, r in self.per_model.items()},
            "comparison": [r.to_dict() for r in self.comparison],
            "errors": [r.to_dict() for r in self.errors],
            "data_error": self.data_error,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesChoice:
        return cls(
            best=UnitResult.from_dict(d["best"]) if d.get("best") else None,
            per_model={m: UnitResult.from_dict(r) for m, r in d.get("per_model", {}).items()},
            comparison=[UnitResult.from_dict(r) for r in d.get("comparison", [])],
            errors=[UnitResult.from_dict(r) for r in d.get("errors", [])],
            data_error=d.get("data_error"),
        )


def _rank(config: TimexConfig) -> tuple[dict[str, int], dict[str, int]]:
    return (
        {m: i for i, m in enumerate(config.model_names)},
        {t: i for i, t in enumerate(config.transformations)},
    )


def choose_best(config: TimexConfig, results: Iterable[UnitResult]) -> SeriesChoice:
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

    every = list(results)
    ok = sorted((r for r in every if r.error is None), key=spec_key)
    errors = sorted((r for r in every if r.error is not None), key=spec_key)
    per_model: dict[str, UnitResult] = {}
    for r in sorted(ok, key=quality):
        per_model.setdefault(r.spec.model, r)
    per_model = dict(sorted(per_model.items(), key=lambda item: spec_key(item[1])))
    best = min(per_model.values(), key=quality) if per_model else None
    return SeriesChoice(best=best, per_model=per_model, comparison=ok, errors=errors)
