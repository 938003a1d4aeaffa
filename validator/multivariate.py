"""The validator's share of TIMEX's multivariate stage (pipeline.py: get_best_univariate_predictions, then
get_best_multivariate_predictions), kept apart from the per-series flow it hooks into.

The ingestion computed each series' cross-correlations and extra regressors (forecasting.xcorr) and stored
them with the series' first chunk; the validator reads them once, with the series' state.

1. A series S that is an extra regressor of others is decided univariately as usual; then its validator
   stores S's history followed by its univariate forecast on `series` (as the ingestion stores additional regressors)
   and sends each target T a "regressor ready" marker on `predictions`, keyed to T (as the forget marker),
   naming where that is (or, when S has no forecast, why not).
2. T's univariate units and refits complete as usual, but T is held until every regressor is ready; then
   its validator sends T's multivariate units (each model that takes regressors, with its best univariate
   transformation, over every training window: TIMEX re-runs the model with that transformation), then the
   final refit of the best of them, and decides: the better of univariate and multivariate by the main
   accuracy estimator is kept (TIMEX keeps the multivariate result only if its error is lower); both go in
   the answer. The existing deadline bounds every wait: past it T is answered univariately, with a warning.

Deviation from TIMEX: a regressor's future is its best univariate forecast (TIMEX takes the regressor's
forecast by the same model as the target's); `arima` takes regressors (TIMEX's ARIMA ignores them).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd

from forecasting.config import config_from_json
from forecasting.metrics import score
from forecasting.models import get_model_class
from forecasting.selection import choose_best
from forecasting.units import UnitResult, UnitSpec, batches, training_windows
from forecasting.xcorr import SeriesXcorr
from schemas.keys import escape, series_key
from timex_stream.records import dataset, failure, now_ms
from timex_stream.series_store import SeriesStore, parts
from validator.decide import choose

log = logging.getLogger("validator")
State = dict[str, Any]
Send = Callable[[str, dict[str, Any]], Awaitable[Any]]

READY = -3  # unit index of a "regressor ready" marker (DEADLINE -1 and FORGET -2 are the validator's others)
BASE = 1_000_000  # multivariate units' indexes start here: never one of the series' plan or refits
READY_TRIES, READY_RETRY_S = 60, 2.0  # a marker that beats its target's first unit comes back, boundedly


def read_xcorr(store: SeriesStore, ref: dict[str, Any] | None) -> str | None:
    """This series' xcorr (JSON) from its first chunk; None when the request asked for none. Blocking."""
    if ref is None or not ref.get("offsets"):
        return None
    return store.records(ref["partition"], ref["offsets"][:1])[0].get("xcorr_json")


def xcorr_of(state: State) -> SeriesXcorr | None:
    text = state.get("xcorr")
    return SeriesXcorr.from_json(text) if text else None


def is_ours(prediction: dict[str, Any]) -> bool:
    """A ready marker or a multivariate unit's Prediction: this module's, not the univariate flow's."""
    return prediction["unit"]["index"] == READY or prediction["unit"]["index"] >= BASE


def _mv(state: State) -> dict[str, Any]:
    return state.setdefault("mv", {"ready": {}, "units": {}, "total": None, "refit": None, "sent_refit": False})


def _multivariate_models(state: State) -> list[str]:
    config = config_from_json(state["config_json"])
    return [m for m in config.model_names if get_model_class(m).takes_regressors]


def wanted(state: State) -> list[str]:
    """The series' extra regressors, when a model of the request can take them."""
    found = xcorr_of(state)
    return list(found.regressors) if found and found.regressors and _multivariate_models(state) else []


# --- 1. a decided series announces its forecast to the series it is a regressor of -------------------------

def _with_forecast(history: pd.Series, forecast: dict[str, Any]) -> pd.Series:
    future = pd.Series(forecast["yhat"], index=pd.DatetimeIndex(pd.to_datetime(forecast["timestamps"])))
    return pd.concat([history, future[future.index > history.index[-1]]]).rename(history.name)


async def announce(rid: str, series: str, state: State, record: dict[str, Any], store: SeriesStore,
                   send_series: Send, send_prediction: Send) -> None:
    """Once S's univariate forecast is known: store S's history + that forecast and tell each target where
    it is (once per series: the state remembers it)."""
    found = xcorr_of(state)
    if found is None or not found.used_by or state.get("announced"):
        return
    state["announced"] = True
    error, where = None, None
    if record["forecast"] is None:
        error = f"'{series}' has no forecast"
    else:
        try:
            history = await asyncio.to_thread(store.series, state["ref"], series)
            chunks = parts(rid, series, 0, _with_forecast(history, record["forecast"]),
                           key=f"{escape(rid)}/xcorr/{escape(series)}")
            sent = [await send_series(k, part) for k, part in chunks]
            landed = [await s for s in sent]  # (partition, offset) of each chunk, once the broker has it
            where = {"partition": landed[0].partition, "offsets": [m.offset for m in landed]}
        except Exception as exc:  # the targets must still be answered: univariately, with the reason
            log.exception("regressor %s could not be stored", series)
            error = f"'{series}' could not be stored as a regressor: {exc}"
    for target in found.used_by:
        await send_prediction(series_key(rid, target), ready_marker(rid, target, series, state, where, error))


def ready_marker(rid: str, target: str, regressor: str, state: State, where: dict[str, Any] | None,
                 error: str | None, tries: int = 0) -> dict[str, Any]:
    return {"request_id": rid, "series": target, "series_total": state["series_total"],
            "unit": {"model": regressor, "transformation": "", "window": 0, "index": READY, "total": 0,
                     "refit": False, "regressors": []},
            "error": error, "metrics": {}, "test_forecast": [], "forecast": None, "fit_seconds": 0.0,
            "params": {"where": json.dumps(where), "tries": str(tries)},
            "main_accuracy_estimator": state["estimator"], "ref": state["ref"], "history_timestamps": [],
            "history_values": [], "more": [], "worker": "validator"}


# --- 2. the target collects its regressors, runs its multivariate units, decides ---------------------------

async def receive(key: str, prediction: dict[str, Any], state: State | None, send_prediction: Send,
                  send_dataset: Send) -> bool:
    """Fold a marker or a multivariate unit into `state` (and send what comes next). True when `state`
    changed and should be written."""
    unit = prediction["unit"]
    if state is None:
        if unit["index"] == READY and int(prediction["params"].get("tries", "0")) < READY_TRIES:
            # The target's first unit has not arrived yet: the marker comes back a little later.
            again = {**prediction, "params": {**prediction["params"],
                                              "tries": str(int(prediction["params"].get("tries", "0")) + 1)}}
            asyncio.get_running_loop().call_later(
                READY_RETRY_S, lambda: asyncio.ensure_future(send_prediction(key, again)))
        return False
    if state["decided"]:
        return False
    mv = _mv(state)
    if unit["index"] == READY:
        where = json.loads(prediction["params"].get("where") or "null")
        mv["ready"][unit["model"]] = {"where": where, "error": prediction["error"]}
    elif unit["refit"]:
        mv["refit"] = {k: prediction[k] for k in ("unit", "error", "forecast", "fit_seconds", "params")}
    else:
        mv["units"][str(unit["index"])] = {k: prediction[k] for k in ("unit", "error", "metrics", "fit_seconds",
                                                                      "params")}
    state["last_at"] = now_ms()
    await advance(prediction["request_id"], prediction["series"], state, send_dataset)
    return True


def _results(mv: dict[str, Any]) -> list[UnitResult]:
    return [UnitResult.from_dict({"spec": u["unit"], "metrics": u["metrics"], "fit_seconds": u["fit_seconds"],
                                  "params": u["params"], "error": u["error"]}) for u in mv["units"].values()]


def _usable(mv: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r["where"] for name, r in mv["ready"].items() if r["error"] is None and r["where"]}


async def advance(rid: str, series: str, state: State, send_dataset: Send) -> None:
    """Send the next multivariate step once the previous one is complete."""
    mv = _mv(state)
    regressors = wanted(state)
    if state["refits_expected"] is None or len(state["refits"]) < state["refits_expected"]:
        return  # the univariate stage goes first: its best transformation per model is needed
    if any(r not in mv["ready"] for r in regressors):
        return
    usable = _usable(mv)
    ref = {**state["ref"], "regressors": [{"name": n, "offsets": w["offsets"]} for n, w in usable.items()]}
    if mv["total"] is None:
        specs = _plan(state, list(usable))
        mv["total"] = len(specs)
        for first, *more in batches(specs, state["ref"]["points"]):
            key, record = dataset(rid, series, state["series_total"], specs[first], BASE + first, len(specs), ref,
                                  more=[(specs[i], BASE + i) for i in more])
            await send_dataset(key, record)
        return
    if len(mv["units"]) >= mv["total"] and not mv["sent_refit"]:
        mv["sent_refit"] = True
        best = choose_best(config_from_json(state["config_json"]), _results(mv)).best
        if best is not None:
            key, record = dataset(rid, series, state["series_total"], best.spec, BASE + mv["total"], 1, ref,
                                  refit=True)
            await send_dataset(key, record)


def _plan(state: State, regressors: list[str]) -> list[UnitSpec]:
    """Each model that takes regressors, with its best univariate transformation, over every window."""
    if not regressors:
        return []
    config = config_from_json(state["config_json"])
    per_model = choose(state).per_model
    mp = config.model_parameters
    points = state["ref"]["points"]
    windows = training_windows(points, mp.test_size(points), mp.delta_training_percentage)
    return [UnitSpec(m, per_model[m].spec.transformation, w, tuple(regressors))
            for m in _multivariate_models(state) if m in per_model for w in windows]


async def hold(rid: str, series: str, state: State, send_dataset: Send) -> bool:
    """At the univariate decision: True while the multivariate stage still runs (the caller keeps the
    state and waits for the next record)."""
    if not wanted(state):
        return False
    await advance(rid, series, state, send_dataset)
    return not finished(state)


def finished(state: State) -> bool:
    """Nothing (more) to wait for: decide. With no regressor wanted, at once."""
    regressors = wanted(state)
    if not regressors:
        return True
    mv = _mv(state)
    if any(r not in mv["ready"] for r in regressors) or mv["total"] is None:
        return False
    if mv["total"] == 0:
        return True
    if len(mv["units"]) < mv["total"]:
        return False
    return not mv["sent_refit"] or mv["refit"] is not None or all(u["error"] for u in mv["units"].values())


# --- the answer ---------------------------------------------------------------------------------------------

def candidate(record: dict[str, Any], regressors: list[str] | None = None) -> dict[str, Any] | None:
    """A chosen model as the answer's "univariate"/"multivariate" entry."""
    if record["model"] is None:
        return None
    return {"model": record["model"], "transformation": record["transformation"], "metrics": dict(record["metrics"]),
            "forecast": record["forecast"], "regressors": list(regressors or [])}


def _multivariate_best(state: State) -> UnitResult | None:
    mv = state.get("mv")
    if not mv or not mv["refit"] or mv["refit"]["error"] or not mv["refit"]["forecast"]:
        return None
    best = choose_best(config_from_json(state["config_json"]), _results(mv)).best
    if best is None or UnitSpec.from_dict(mv["refit"]["unit"]) != best.spec:
        return None
    return UnitResult.from_dict({**best.to_dict(), "forecast": mv["refit"]["forecast"]})


def answer(rid: str, series: str, state: State, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Add the answer's xcorr keys to `record` (keeping the better stage in its model/forecast); → Failures."""
    found = xcorr_of(state)
    record.update({"xcorr": None, "univariate": None, "multivariate": None, "kept": None})
    if found is None:
        return []
    record["xcorr"] = found.answer()
    record["univariate"] = candidate(record)
    record["kept"] = "univariate" if record["model"] is not None else None
    regressors = wanted(state)
    if not regressors:
        return []
    mv = _mv(state)
    problems = [f"{r}: {mv['ready'][r]['error']}" for r in regressors if mv["ready"].get(r, {}).get("error")]
    late = [r for r in regressors if r not in mv["ready"]]
    best = _multivariate_best(state)
    failures = []
    if late:
        problems.append(f"the forecasts of {', '.join(late)} did not arrive in time")
    if best is None and not problems:
        problems.append("no model fitted with the extra regressors produced a forecast")
    if problems:
        failures.append(failure(rid, "xcorr", "answered with the univariate model only: " + "; ".join(problems),
                                series=series))
    if best is None or best.forecast is None:
        return failures
    multivariate = {"model": best.spec.model, "transformation": best.spec.transformation,
                    "metrics": dict(best.metrics), "forecast": best.forecast.to_dict(),
                    "regressors": list(best.spec.regressors)}
    record["multivariate"] = multivariate
    estimator = state["estimator"]
    if record["model"] is None or score(best.metrics, estimator) < score(record["metrics"], estimator):
        record.update({"model": best.spec.model, "transformation": best.spec.transformation,
                       "window": best.spec.window, "metrics": dict(best.metrics),
                       "forecast": best.forecast.to_dict(), "kept": "multivariate"})
    return failures
