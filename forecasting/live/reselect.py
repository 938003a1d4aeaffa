"""Re-selection of a live series' model (broker-free; `LiveSeries` and the live service drive it).

When: the rolling error (forecasting.live.accuracy) stayed above `reselect_factor` × the validation error the
model was chosen with for `reselect_patience` actuals in a row (*drift*), or `reselect_every` final points
passed since the window the model was chosen on (*schedule*). Both are counted on final points as the model
folds them, so the trigger is a point of the data: `Trigger.position` (the final point) and
`Trigger.triggered_at` (the observation count when that point became final).

What: the whole TIMEX selection (the normal fan-out, units, pool and limits, under the request id
`schemas.keys.reselection_id`) on the latest `min_points` final points up to the trigger (`Trigger.snapshot`).

The switch point, defined by data so that a replay or a restart gives the same revisions: every revision
numbered above `triggered_at` uses the outcome. While the outcome is pending, the series publishes no
revision (its points are folded meanwhile, none is lost; the other series go on); then either
- the new choice wins on the same window (`decide`: its error in the re-selection's comparison below the old
  choice's, and, for a drift, the old choice's error there above the drift threshold too): it is fitted on the
  snapshot, folds every final point after the trigger, and its revisions say why (`switch_record`: drift or
  schedule, both errors; on every revision of the new model, so that no revision's content depends on
  batching); the accuracy starts again for the new model;
- or the old model stays (the same choice again, or no better one, a drift the latest window does not show, or
  every unit failed): the next revision
  is what it would have been without the re-selection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forecasting.config import TimexConfig
from forecasting.metrics import score
from forecasting.units import plan_units_for

DRIFT, SCHEDULE = "drift", "schedule"


@dataclass(frozen=True)
class Trigger:
    reason: str  # DRIFT | SCHEDULE
    triggered_at: int  # window.included when the triggering point became final
    position: int  # the triggering final point's number (1: the series' first)
    snapshot: pd.Series  # the latest min_points final points, up to and with the triggering one
    rolling_error: float | None


def due(position: int, selected_position: int, over: int, patience: int, every: int) -> str | None:
    """The reason to re-select after the final point at `position`, or None. `selected_position`: the last
    final point of the window the current model was chosen on."""
    if patience > 0 and over >= patience:
        return DRIFT
    if every > 0 and position - selected_position >= every:
        return SCHEDULE
    return None


def can_switch(config: TimexConfig, points: int) -> bool:
    """Whether a re-selection on `points` points has more than one (model, transformation, window) to choose
    from. With one, it can only choose the current model again (`decide`: the model stays), so it would cost a
    whole selection in the pool and pause the series' revisions for nothing: a request of one model, one
    transformation and one window is never re-selected (bench/live.py's 1,000 series: their drift triggers had
    the predictor's pool busy and their revisions waiting)."""
    try:
        return len(plan_units_for(config, points, "")) > 1
    except ValueError:  # too few points for a selection: none can run
        return False


def _row_error(best: dict[str, Any], model: str, transformation: str, window: int) -> float | None:
    estimator = best["main_accuracy_estimator"]
    for row in best.get("comparison") or ():
        if (row["model"], row["transformation"], row["window"]) == (model, transformation, window):
            if row.get("error"):
                return None
            value = score(row.get("metrics") or {}, estimator)
            return None if math.isinf(value) else value
    return None


@dataclass(frozen=True)
class Decision:
    """A re-selection's outcome for a series (`decide`)."""

    switch: bool
    model: str | None = None
    transformation: str | None = None
    window: int | None = None
    params: dict[str, str] | None = None
    old_error: float | None = None
    new_error: float | None = None
    why: str = ""


def answer_of(best: dict[str, Any]) -> dict[str, Any]:
    """What `decide` reads of a re-selection's BestModel record (JSON-able: the live service keeps it, so a
    restart decides the same without selecting again, even when the answer came before the series re-triggered)."""
    rows = [{"model": r["model"], "transformation": r["transformation"], "window": r["window"],
             "metrics": dict(r.get("metrics") or {}), "params": dict(r.get("params") or {}), "error": r.get("error")}
            for r in best.get("comparison") or ()]
    return {"model": best.get("model"), "transformation": best.get("transformation"), "window": best.get("window"),
            "main_accuracy_estimator": best["main_accuracy_estimator"], "metrics": dict(best.get("metrics") or {}),
            "comparison": rows}


def decide(old_model: str, old_transformation: str, old_window: int, best: dict[str, Any],
           confirm_above: float | None = None) -> Decision:
    """Compare the re-selection's answer (a BestModel record) with the current choice on the same window: switch
    only when another (model, transformation, window) won and its error there is below the old one's.

    `confirm_above` (a drift's threshold, `LiveSeries.decision`): the old choice's error on the latest window
    must also be above it, so that the drift shows on the re-selection's own test points too. The rolling error
    that triggers is over a few actuals, against a validation error of a few test points, so noise alone
    crosses it now and then; another model then wins the latest window by chance (bench/live_drift.py: 3 of 10
    steady series switched on noise; one of them, its old error 1.09 on the window under its threshold 1.13, keeps
    its model now; a drift's old errors were 37-59)."""
    if not best.get("model"):
        return Decision(False, why="every unit of the re-selection failed: the model stays")
    model, transformation = best["model"], best.get("transformation") or "none"
    window = int(best.get("window") or 0)
    new_error = _row_error(best, model, transformation, window)
    if new_error is None:
        value = score(best.get("metrics") or {}, best["main_accuracy_estimator"])
        new_error = None if math.isinf(value) else value
    old_error = _row_error(best, old_model, old_transformation, old_window)
    if (model, transformation, window) == (old_model, old_transformation, old_window):
        return Decision(False, old_error=old_error, new_error=new_error,
                        why=f"the re-selection chose {model} again: the model stays")
    if new_error is None or (old_error is not None and not new_error < old_error):
        return Decision(False, old_error=old_error, new_error=new_error,
                        why=f"{model} did not beat {old_model} on the latest window: the model stays")
    if confirm_above is not None and old_error is not None and not old_error > confirm_above:
        return Decision(False, old_error=old_error, new_error=new_error,
                        why=f"the drift did not show on the latest window ({old_model}'s error there {old_error:.4g} "
                            f"is not above the threshold {confirm_above:.4g}): the model stays")
    row = next((r for r in best.get("comparison") or () if (r["model"], r["transformation"], r["window"])
                == (model, transformation, window)), None)
    return Decision(True, model, transformation, window, dict(row["params"]) if row else {}, old_error, new_error,
                    why=f"{model} beat {old_model} on the latest window: switching")


def switch_record(trigger: Trigger, old_model: str, old_transformation: str, old_window: int,
                  decision: Decision) -> dict[str, Any]:
    """The `switched` field (schemas.records.ModelSwitchRecord) of the new model's revisions."""
    assert decision.switch and decision.new_error is not None
    return {"reason": trigger.reason, "triggered_at": trigger.triggered_at, "from_model": old_model,
            "from_transformation": old_transformation, "from_window": old_window, "old_error": decision.old_error,
            "new_error": decision.new_error, "rolling_error": trigger.rolling_error}
