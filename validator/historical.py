"""The answer's historical predictions, from the historical units the validator collected for a series
(forecasting.historical: one unit per step, model and transformation; the ordinary units are not its).
Given the series' pieces, not its `Series` (validator.decide, which calls this, stays the only one that
knows how a series is kept)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from forecasting.config import TimexConfig
from forecasting.historical import collect, drop_history
from forecasting.units import UnitResult


def historical_answer(config: TimexConfig, ref: dict[str, Any] | None, results: Iterable[UnitResult],
                      history: tuple[Sequence[str], Sequence[float]], best_model: str | None
                      ) -> dict[str, Any] | None:
    """The BestModel's `historical_predictions` from a series' unit `results` (its historical ones count), its
    `ref` and the end of its `history` (None when none were asked or the series has no ref)."""
    if not ref or not ref.get("historical_from"):
        return None
    return collect(config, drop_history(results)[1], ref["points"], ref["historical_from"], history, best_model)
