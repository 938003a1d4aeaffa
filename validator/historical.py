"""The answer's historical predictions, from the historical units the validator collected for a series
(forecasting.historical: one unit per step, model and transformation; the ordinary units are not its)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forecasting.historical import collect
from forecasting.units import UnitResult

if TYPE_CHECKING:  # validator.decide imports this module
    from validator.decide import Series


def historical_answer(series: Series, best_model: str | None) -> dict[str, Any] | None:
    """The BestModel's `historical_predictions` (None when none were asked or the series has no ref)."""
    ref = series.state.ref
    if not ref or not ref.get("historical_from"):
        return None
    past = [UnitResult.from_dict({"spec": u["unit"], "metrics": u["metrics"], "forecast": u["forecast"],
                                  "fit_seconds": u["fit_seconds"], "params": u["params"], "error": u["error"]})
            for u in series.units() if u["unit"].get("historical_end")]
    return collect(series.config, past, ref["points"], ref["historical_from"], series.history(), best_model)
