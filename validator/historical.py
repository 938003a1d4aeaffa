"""The answer's historical predictions, from the historical units the validator collected for a series
(forecasting.historical: one unit per step, model and transformation; the ordinary units are not its)."""

from __future__ import annotations

from typing import Any

from forecasting.config import config_from_json
from forecasting.historical import collect
from forecasting.units import UnitResult


def historical_answer(state: dict[str, Any], best_model: str | None) -> dict[str, Any] | None:
    """The BestModel's `historical_predictions` (None when none were asked or the series has no ref)."""
    ref = state.get("ref")
    if not ref or not ref.get("historical_from"):
        return None
    past = [UnitResult.from_dict({"spec": u["unit"], "metrics": u["metrics"], "forecast": u["forecast"],
                                  "fit_seconds": u["fit_seconds"], "params": u["params"], "error": u["error"]})
            for u in state["units"].values() if u["unit"].get("historical_end")]
    history = state.get("history") or [[], []]
    return collect(config_from_json(state["config_json"]), past, ref["points"], ref["historical_from"],
                   (history[0], history[1]), best_model)
