"""Per-series state of the validator and the decision, free of Kafka.

The state is a plain JSON-able dict (it lives in a Faust table and its changelog). Units are keyed by
their index in the series' plan, so a redelivered Prediction replaces itself: at-least-once input, one
answer. Once decided, a series keeps only a small marker (ids, counts, decided_at: no units, no config), so
late duplicates cannot decide it twice; the service forgets that marker (a tombstone in the changelog) once
it is older than TIMEX_VALIDATOR_FORGET_S, so the table holds only live series and recent decisions.

Two phases, as the core's pipeline: every unit is validated (scored on the held-out points); once all
are in, each model's best unit is refitted on window + test points for its final forecast (one refit
Dataset per model, run by the predictors); when those are in, the series is decided.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from forecasting.config import config_from_json
from forecasting.historical import drop_history, plan_all
from forecasting.selection import SeriesChoice, choose_best
from forecasting.units import Forecast, UnitResult, UnitSpec, batches
from schemas.keys import split_series_key
from timex_stream.records import dataset, failure, now_ms, progress
from timex_stream.series_store import regressor_names
from validator.historical import historical_answer

State = dict[str, Any]


def new_state(prediction: dict[str, Any], config_json: str) -> State:
    """`config_json`: the request's config, read from where the prediction's ref points."""
    # The ids travel in the state: keys are never parsed back (a series name may hold any character).
    return {"request_id": prediction["request_id"], "series": prediction["series"],
            "units": {}, "total": prediction["unit"]["total"], "series_total": prediction["series_total"],
            "config_json": config_json,
            "estimator": config_from_json(config_json).model_parameters.main_accuracy_estimator,
            "ref": prediction["ref"], "history": [[], []], "first_at": now_ms(), "last_at": now_ms(),
            "decided": False,
            "refits": {}, "refits_expected": None}


def add(state: State, prediction: dict[str, Any]) -> bool:
    """Record one unit's result; False when it was already there (a redelivery) or the series is decided."""
    if state["decided"]:
        return False
    if prediction["unit"]["refit"]:
        model = prediction["unit"]["model"]
        fresh = model not in state["refits"]
        state["refits"][model] = {k: prediction[k] for k in ("unit", "error", "forecast", "fit_seconds", "params")}
        return fresh
    index = str(prediction["unit"]["index"])
    fresh = index not in state["units"]
    state["last_at"] = now_ms() if fresh else state["last_at"]
    state["units"][index] = {k: prediction[k] for k in ("unit", "error", "metrics", "forecast", "fit_seconds",
                                                        "params")}
    if prediction["history_timestamps"] and not state["history"][0]:
        state["history"] = [prediction["history_timestamps"], prediction["history_values"]]
    return fresh


def identity(key: str, state: State) -> tuple[str, str]:
    """(request id, series) of a state; states written before they carried them are told by their key."""
    if "request_id" in state:
        return state["request_id"], state["series"]
    return split_series_key(key)


DEADLINE, FORGET = -1, -2  # unit indexes of the validator's own markers on `predictions`


def deadline_marker(key: str, state: State, index: int = DEADLINE) -> dict[str, Any]:
    """A Prediction that tells the validator's agent to decide `key` now (unit index -1), or, with
    index FORGET, to delete the decided marker of `key` (the table is written on the key's own partition)."""
    rid, series = identity(key, state)
    return {"request_id": rid, "series": series, "series_total": state["series_total"],
            "unit": {"model": "", "transformation": "", "window": 0, "index": index, "total": state["total"],
                     "refit": False},
            "error": "deadline", "metrics": {}, "test_forecast": [], "forecast": None, "fit_seconds": 0.0,
            "params": {}, "main_accuracy_estimator": state["estimator"], "ref": state["ref"],
            "history_timestamps": [], "history_values": [], "worker": "validator"}


def is_deadline_marker(prediction: dict[str, Any]) -> bool:
    return prediction["unit"]["index"] == DEADLINE


def is_forget_marker(prediction: dict[str, Any]) -> bool:
    return prediction["unit"]["index"] == FORGET


def validated(state: State) -> bool:
    return len(state["units"]) >= state["total"]


def is_complete(state: State) -> bool:
    expected = state["refits_expected"]
    return validated(state) and expected is not None and len(state["refits"]) >= expected


def plan_refits(request_id: str, series: str, state: State) -> list[tuple[str, dict[str, Any]]]:
    """(key, Dataset) for the final refit of each model's best unit; records how many to expect."""
    specs = [r.spec for r in choose(state).per_model.values()]
    state["refits_expected"] = len(specs)
    points = state["ref"]["points"] if state["ref"] else len(state["history"][1])
    # Cheap refits travel together, as the units did (forecasting.units.batches).
    return [dataset(request_id, series, state["series_total"], specs[first], state["total"] + first, len(specs),
                    state["ref"], refit=True, more=[(specs[i], state["total"] + i) for i in more])
            for first, *more in batches(specs, points)]


def missing_units(request_id: str, series: str, state: State) -> list[tuple[str, dict[str, Any]]]:
    """(key, Dataset) for every unit that has not arrived: the plan is deterministic, so the validator
    re-plans it from the series' length and asks the predictors again (a lost record must not stall a series)."""
    if state["ref"] is None:
        return []
    if state["refits_expected"] is not None:
        return [(k, d) for k, d in plan_refits(request_id, series, state)
                if any(u["model"] not in state["refits"] for u in [d["unit"], *d["more"]])]
    units = plan_all(config_from_json(state["config_json"]), state["ref"]["points"], series,
                     state["ref"].get("historical_from") or 0, regressor_names(state["ref"]))
    return [_dataset(request_id, series, state, u, i, len(units)) for i, u in enumerate(units)
            if str(i) not in state["units"]]


def _dataset(request_id: str, series: str, state: State, spec: Any, index: int, total: int,
             refit: bool = False) -> tuple[str, dict[str, Any]]:
    return dataset(request_id, series, state["series_total"], spec, index, total, state["ref"], refit=refit)


def _results(state: State) -> list[UnitResult]:
    """Validated units, each model's best carrying its final refit (forecast, final params, its time)."""
    results = []
    for u in state["units"].values():
        r = UnitResult.from_dict({"spec": u["unit"], "metrics": u["metrics"], "forecast": u["forecast"],
                                  "fit_seconds": u["fit_seconds"], "params": u["params"], "error": u["error"]})
        refit = state["refits"].get(r.spec.model)
        if refit and r.error is None and UnitSpec.from_dict(refit["unit"]) == r.spec:
            r = replace(r, forecast=Forecast.from_dict(refit["forecast"]) if refit["forecast"] else None,
                        params={**r.params, **refit["params"]}, fit_seconds=r.fit_seconds + refit["fit_seconds"],
                        error=f"final refit: {refit['error']}" if refit["error"] else None)
        results.append(r)
    return results


def choose(state: State) -> SeriesChoice:
    """The series' model choice, from its ordinary units (historical ones: validator.historical)."""
    return choose_best(config_from_json(state["config_json"]), drop_history(_results(state))[0])


def _row(r: UnitResult, best_of_model: bool) -> dict[str, Any]:
    return {"model": r.spec.model, "transformation": r.spec.transformation, "window": r.spec.window,
            "metrics": dict(r.metrics), "fit_seconds": r.fit_seconds, "params": dict(r.params), "error": r.error,
            "best_of_model": best_of_model}


def decide(request_id: str, series: str, state: State, deadline_s: float | None = None
           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """→ (BestModel record, Failures). `deadline_s` set: decided early, with the units that arrived."""
    choice = choose(state)
    best = choice.best
    winners = {id(r) for r in choice.per_model.values()}
    rows = [_row(r, id(r) in winners) for r in choice.comparison] + [_row(r, False) for r in choice.errors]
    record = {
        "request_id": request_id, "series": series, "series_total": state["series_total"],
        "model": best.spec.model if best else None, "transformation": best.spec.transformation if best else None,
        "window": best.spec.window if best else None, "main_accuracy_estimator": state["estimator"],
        "metrics": dict(best.metrics) if best else {}, "forecast": best.forecast.to_dict() if best and best.forecast
        else None,
        "per_model": {m: r.forecast.to_dict() for m, r in choice.per_model.items() if r.forecast},
        "comparison": rows, "history_timestamps": state["history"][0], "history_values": state["history"][1],
        "history_points": state["ref"]["points"] if state["ref"] else len(state["history"][1]),
        "series_ref": state["ref"],
        "units_done": len(state["units"]), "units_total": state["total"], "complete": deadline_s is None,
        "historical_predictions": historical_answer(state, best.spec.model if best else None),
        "decided_at": now_ms(),
    }
    failures = []
    if deadline_s is not None:
        failures.append(failure(request_id, "deadline", f"only {len(state['units'])} of {state['total']} units "
                                f"arrived within {deadline_s:.0f} s; decided with those", series=series))
    failed_models = sorted({r.spec.model for r in choice.errors} - set(choice.per_model))
    for model in failed_models:
        first = next(r for r in choice.errors if r.spec.model == model)
        failures.append(failure(request_id, "model", f"{model} failed on every unit: {first.error}",
                                series=series, model=model))
    if best is None:
        failures.append(failure(request_id, "model", "no model produced a forecast for this series",
                                series=series))
    return record, failures


def progress_of(request_id: str, series: str, state: State, done: bool = False) -> dict[str, Any]:
    """Units done for this series and, once there is one, the best model so far."""
    best = choose(state).best if state["units"] else None
    expected = state["refits_expected"]
    message = f"final forecasts {len(state['refits'])}/{expected}" if expected is not None and not done else ""
    return progress(request_id, "series_done" if done else "predicting", message, series=series,
                    units_done=len(state["units"]), units_total=state["total"],
                    current_best=best.spec.model if best else None)


_MARKER_FIELDS = ("request_id", "series", "total", "series_total", "estimator", "ref", "first_at", "last_at")


def mark_decided(state: State) -> State:
    """Keep a small marker of fixed size (no units, no refits, no config, no history): late or duplicate
    predictions must not decide this series again, and a request must not leave kilobytes behind."""
    return {**{k: state[k] for k in _MARKER_FIELDS if k in state}, "units": {}, "refits": {}, "history": [[], []],
            "refits_expected": None, "decided": True, "decided_units": len(state["units"]), "decided_at": now_ms()}


def forgettable(state: State, now: int, forget_s: float) -> bool:
    """A decided marker older than `forget_s` (a grace window longer than any duplicate's delay) may go."""
    return state["decided"] and now - state.get("decided_at", 0) > forget_s * 1000
