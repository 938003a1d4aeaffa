"""Per-series state of the validator and the decision, free of Kafka.

A series lives under two kinds of keys in the service's changelog-backed Faust table:
- its `SeriesState` (a faust Record of fixed size: ids, ref, counters, times), under the series key;
- its parts, each under a key of its own (`part_key`): the config, the history tail and the series'
  cross-correlations (xcorr), written once, and one outcome per unit (validation units by plan index, final
  refits by model); for the multivariate stage (validator.multivariate) one part per extra regressor ready
  and per multivariate unit, and one for its final refit.
So a new unit writes its own outcome and the few counters: O(1) bytes on the changelog, whatever came
before (the state used to carry every unit: O(units²) bytes per series). Units are keyed by their index
in the series' plan, so a redelivered Prediction finds itself there: at-least-once input, one answer.

Once decided, a series' parts are deleted (tombstones) and it keeps only its state, marked decided, so
late duplicates cannot decide it twice; the service forgets that marker too (a tombstone) once it is older
than TIMEX_VALIDATOR_FORGET_S, so the tables hold only live series and recent decisions.

Two phases, as the core's pipeline: every unit is validated (scored on the held-out points); once all
are in, each model's best unit (each candidate's: forecasting.selection.refit_slot) is refitted on window +
test points for its final forecast (one refit Dataset per slot, run by the predictors); when those are in,
the series is decided. Which refits, how they fold into their units and the choice are
forecasting.selection's protocol, as everywhere else.

State written by the versions before (one JSON dict per series, units inside) is read by `upgrade`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import faust

from forecasting.config import TimexConfig, config_from_json
from forecasting.historical import historical_answer, plan_all
from forecasting.selection import SeriesChoice, choose_final, refit_slot, refit_slots, refits_needed
from forecasting.series import NO_TAIL, Tail
from forecasting.tail import HISTORY_TAIL_POINTS
from forecasting.units import UnitResult, UnitSpec, batches
from forecasting.xcorr import SeriesXcorr
from schemas.keys import escape, series_key, split_series_key
from schemas.records import (
    BestModelRecord,
    DatasetRecord,
    FailureRecord,
    ModelResultRecord,
    PredictionRecord,
    ProgressRecord,
)
from timex_stream.runtime import records
from timex_stream.runtime.records import dataset, failure, now_ms, progress, units_of
from timex_stream.runtime.series_store import SeriesStore, regressor_names

Parts = MutableMapping[str, Any]  # where the parts go: the service's table (a plain dict in tests)
_UNIT_FIELDS = ("unit", "error", "metrics", "forecast", "fit_seconds", "params")
_REFIT_FIELDS = ("unit", "error", "forecast", "fit_seconds", "params")


class SeriesState(faust.Record, namespace="timex.validator.SeriesState"):
    """What the validator keeps of a series under its key: a few ids and counters, never its units."""

    request_id: str
    series: str
    total: int  # validation units planned
    series_total: int
    estimator: str
    ref: dict[str, Any] | None  # where the series and the config are (a SeriesRef)
    first_at: int
    last_at: int  # when the last new unit arrived (stall repair)
    units_done: int = 0  # distinct validation units in
    refits_done: int = 0  # distinct final refits in
    refits_expected: int | None = None  # set once every unit is in and the refits are asked for
    has_history: bool = False  # the history tail is among the parts
    decided: bool = False
    decided_at: int = 0
    # The multivariate stage (validator.multivariate); its parts are the truth, these count them.
    announced: bool = False  # as a regressor of other series: its forecast was stored and they were told
    mv_total: int | None = None  # multivariate units planned, once the univariate stage is done
    mv_done: int = 0  # distinct multivariate units in
    mv_refit_sent: bool = False  # the best multivariate unit's final refit was asked for


def part_key(key: str, part: str) -> str:
    """A part of series `key`: `key` has exactly one `/` (its components are escaped), parts add one more."""
    return f"{key}/{part}"


def is_series_key(key: str) -> bool:
    """A series' own key, not one of its parts'."""
    return key.count("/") == 1


def _unit_part(key: str, index: int) -> str:
    return part_key(key, f"u{index}")


def _refit_part(key: str, slot: str) -> str:
    """A final refit, by the slot it fills (forecasting.selection.refit_slot: its model, unless a combination
    takes each transformation of a model)."""
    return part_key(key, f"r{escape(slot)}")


def xcorr_part(key: str) -> str:
    return part_key(key, "xcorr")


def ready_part(key: str, regressor: str) -> str:
    """Where an extra regressor's "ready" marker (its stored forecast, or why there is none) is kept."""
    return part_key(key, f"e{escape(regressor)}")


def mv_unit_part(key: str, index: int) -> str:
    """A multivariate unit, by its unit index (MV_BASE and up)."""
    return part_key(key, f"m{index}")


def mv_refit_part(key: str) -> str:
    return part_key(key, "mrefit")


@dataclass
class Series:
    """A series' state with its parts: what every function below works on."""

    key: str
    state: SeriesState
    parts: Parts
    # The end of the history for the answer, read from the series topic before a decision (validator.service);
    # a history part (ISO timestamps, values), written by predictors of the versions before, wins.
    tail: Tail | None = None

    @cached_property
    def config(self) -> TimexConfig:
        return config_from_json(self.config_json())

    def config_json(self) -> str:
        return self.parts[part_key(self.key, "config")]["config_json"]

    def units(self) -> list[dict[str, Any]]:
        """Validation outcomes in, in plan order."""
        found = (self.parts.get(_unit_part(self.key, i)) for i in range(self.state.total))
        return [u for u in found if u is not None]

    def has_unit(self, index: int) -> bool:
        return _unit_part(self.key, index) in self.parts

    def refits(self) -> dict[str, dict[str, Any]]:
        """Final refit outcomes in, by slot (forecasting.selection.refit_slot)."""
        found = ((m, self.parts.get(_refit_part(self.key, m))) for m in refit_slots(self.config))
        return {m: r for m, r in found if r is not None}

    def history(self) -> Tail:
        if not self.state.has_history:
            return self.tail or NO_TAIL
        tail = self.parts[part_key(self.key, "history")]
        return Tail.from_wire(tail["timestamps"], tail["values"])

    @cached_property
    def xcorr(self) -> SeriesXcorr | None:
        """The series' cross-correlations and extra regressors (None: the request asked for none)."""
        found = self.parts.get(xcorr_part(self.key))
        return SeriesXcorr.from_json(found["xcorr_json"]) if found else None

    def mv_units(self) -> list[dict[str, Any]]:
        """Multivariate outcomes in, in plan order."""
        total = self.state.mv_total or 0
        found = (self.parts.get(mv_unit_part(self.key, MV_BASE + i)) for i in range(total))
        return [u for u in found if u is not None]

    def part_keys(self) -> list[str]:
        """Every key this series may have written besides its state."""
        slots = refit_slots(self.config) if part_key(self.key, "config") in self.parts else []
        regressors = self.xcorr.awaited() if self.xcorr else []
        return [part_key(self.key, "config"), part_key(self.key, "history"), xcorr_part(self.key),
                *(_unit_part(self.key, i) for i in range(self.state.total)),
                *(_refit_part(self.key, m) for m in slots),
                *(ready_part(self.key, r) for r in regressors),
                *(mv_unit_part(self.key, MV_BASE + i) for i in range(self.state.mv_total or 0)),
                mv_refit_part(self.key)]


def new_series(key: str, prediction: PredictionRecord, config_json: str, parts: Parts,
               xcorr_json: str | None = None) -> Series:
    """`config_json`: the request's config, read from where the prediction's ref points, and `xcorr_json` the
    series' cross-correlations, when the request asked for them (each written once)."""
    # The ids travel in the state: keys are never parsed back (a series name may hold any character).
    parts[part_key(key, "config")] = {"config_json": config_json}
    if xcorr_json:
        parts[xcorr_part(key)] = {"xcorr_json": xcorr_json}
    state = SeriesState(request_id=prediction["request_id"], series=prediction["series"],
                        total=prediction["unit"]["total"], series_total=prediction["series_total"],
                        estimator=config_from_json(config_json).model_parameters.main_accuracy_estimator,
                        ref=prediction["ref"], first_at=now_ms(), last_at=now_ms())
    return Series(key, state, parts)


def add(series: Series, prediction: PredictionRecord) -> bool:
    """Record one unit's result under its own part; False when it was already there (a redelivery: the
    first stays, nothing is written) or the series is decided."""
    state, unit = series.state, prediction["unit"]
    if state.decided:
        return False
    if unit["refit"]:
        part, fields = _refit_part(series.key, refit_slot(series.config, UnitSpec.from_dict(unit))), _REFIT_FIELDS
    else:
        part, fields = _unit_part(series.key, unit["index"]), _UNIT_FIELDS
    if part in series.parts:
        return False
    series.parts[part] = {k: prediction[k] for k in fields}
    if unit["refit"]:
        state.refits_done += 1
        return True
    state.units_done += 1
    state.last_at = now_ms()
    if prediction["history_timestamps"] and not state.has_history:
        series.parts[part_key(series.key, "history")] = {"timestamps": prediction["history_timestamps"],
                                                         "values": prediction["history_values"]}
        state.has_history = True
    return True


def history_tail(series: Series, store: SeriesStore) -> Tail:
    """The end of the series for the answer's plot, from where its ref points (blocking; for a short series
    its one chunk is in the store's cache already, read with the series' xcorr)."""
    assert series.state.ref is not None
    return Tail.of(store.tail(series.state.ref, series.state.series, HISTORY_TAIL_POINTS), HISTORY_TAIL_POINTS)


def recount(series: Series) -> None:
    """Set the counters from the parts present. A stop between writing a unit's part and the state that
    counts it leaves a part the redelivered prediction finds (so it is not counted again): after a
    recovery the parts are the truth."""
    state = series.state
    if not state.decided:
        state.units_done = len(series.units())
        state.refits_done = len(series.refits()) if part_key(series.key, "config") in series.parts else 0
        state.has_history = part_key(series.key, "history") in series.parts
        state.mv_done = len(series.mv_units())


def identity(state: SeriesState) -> tuple[str, str]:
    return state.request_id, state.series


DEADLINE, FORGET = -1, -2  # unit indexes of the validator's own markers on `predictions`
READY = -3  # unit index of an extra regressor's "ready" marker (validator.multivariate)
MV_BASE = 1_000_000  # multivariate units' indexes start here: never one of the series' plan or refits


def deadline_marker(state: SeriesState, index: int = DEADLINE) -> PredictionRecord:
    """A Prediction that tells the validator's agent to decide the series now (unit index -1), or, with
    index FORGET, to delete its decided marker (the table is written on the key's own partition)."""
    return records.prediction(state.request_id, state.series, state.series_total,
                              records.marker_unit(index, state.total), main_accuracy_estimator=state.estimator,
                              ref=state.ref, error="deadline", worker="validator")


def is_deadline_marker(prediction: PredictionRecord) -> bool:
    return prediction["unit"]["index"] == DEADLINE


def is_forget_marker(prediction: PredictionRecord) -> bool:
    return prediction["unit"]["index"] == FORGET


def validated(state: SeriesState) -> bool:
    return state.units_done >= state.total


def is_complete(state: SeriesState) -> bool:
    expected = state.refits_expected
    return validated(state) and expected is not None and state.refits_done >= expected


def plan_refits(series: Series) -> list[tuple[str, DatasetRecord]]:
    """(key, Dataset) for the final refit of each candidate's best unit (each model's, or each (model,
    transformation) pair's for a combination that asks); records how many to expect. A refit already in (the
    predictor refits a series whose units all ran in one record: runtime.unit_work) is not asked again when it
    is of a unit chosen here; one of another unit is dropped and asked anew (forecasting.selection.refits_needed)."""
    state = series.state
    plan = refits_needed(series.config, results(series), refit_results(series))
    if state.refits_expected is None:  # first asked now: the stall window starts from here
        state.last_at = now_ms()
    state.refits_expected = len(plan.specs)
    for stale in plan.stale:  # its part is keyed by slot: the new refit takes its place
        del series.parts[_refit_part(series.key, refit_slot(series.config, stale.spec))]
        state.refits_done -= 1
    specs, todo = plan.specs, plan.missing
    points = state.ref["points"] if state.ref else len(series.history())
    # Cheap refits travel together, as the units did (forecasting.units.batches).
    return [dataset(state.request_id, state.series, state.series_total, specs[todo[first]], state.total + todo[first],
                    len(specs), state.ref, refit=True, more=[(specs[todo[i]], state.total + todo[i]) for i in more])
            for first, *more in batches([specs[i] for i in todo], points)]


def missing_units(series: Series) -> list[tuple[str, DatasetRecord]]:
    """(key, Dataset) for every unit that has not arrived: the plan is deterministic, so the validator
    re-plans it from the series' length and asks the predictors again (a lost record must not stall a series)."""
    state = series.state
    if state.ref is None:
        return []
    if state.refits_expected is not None:
        refits = series.refits()
        return [(k, d) for k, d in plan_refits(series)
                if any(refit_slot(series.config, UnitSpec.from_dict(u)) not in refits for u in [d["unit"], *d["more"]])]
    units = plan_all(series.config, state.ref["points"], state.series, state.ref.get("historical_from") or 0,
                     regressor_names(state.ref))
    return [dataset(state.request_id, state.series, state.series_total, u, i, len(units), state.ref)
            for i, u in enumerate(units) if not series.has_unit(i)]


def outcome_result(outcome: dict[str, Any]) -> UnitResult:
    """A unit's outcome as the validator keeps it (a part) → its UnitResult."""
    return UnitResult.from_dict({"spec": outcome["unit"], "metrics": outcome.get("metrics") or {},
                                 "forecast": outcome.get("forecast"), "fit_seconds": outcome["fit_seconds"],
                                 "params": outcome["params"], "error": outcome["error"]})


def results(series: Series) -> list[UnitResult]:
    """The validation units in (historical ones too), in plan order."""
    return [outcome_result(u) for u in series.units()]


def refit_results(series: Series) -> list[UnitResult]:
    """The final refits in, one per slot at most (each made for the unit its spec names)."""
    return [outcome_result(r) for r in series.refits().values()]


def choose(series: Series, with_refits: bool = True) -> SeriesChoice:
    """The series' model choice, from its ordinary units (historical ones: forecasting.historical's
    historical_answer) with their refits folded in; without the refits, the choice the refits are asked for (a
    failed refit disqualifies its unit)."""
    return choose_final(series.config, results(series), refit_results(series) if with_refits else ())


def _row(r: UnitResult, best_of_model: bool) -> ModelResultRecord:
    return records.model_result(r.spec.model, r.spec.transformation, r.spec.window, metrics=r.metrics,
                                fit_seconds=r.fit_seconds, params=r.params, error=r.error,
                                best_of_model=best_of_model)


def decide(series: Series, deadline_s: float | None = None) -> tuple[BestModelRecord, list[FailureRecord]]:
    """→ (BestModel record, Failures). `deadline_s` set: decided early, with the units that arrived."""
    state = series.state
    request_id, name = identity(state)
    units = results(series)
    choice = choose_final(series.config, units, refit_results(series))
    best = choice.best
    winners = {id(r) for r in choice.per_model.values()}
    rows = [_row(r, id(r) in winners) for r in choice.comparison] + [_row(r, False) for r in choice.errors]
    tail = series.history()
    record = records.best_model(
        request_id, name, state.series_total,
        model=best.spec.model if best else None, transformation=best.spec.transformation if best else None,
        window=best.spec.window if best else None, main_accuracy_estimator=state.estimator,
        metrics=best.metrics if best else {}, forecast=best.forecast.to_dict() if best and best.forecast
        else None,
        per_model={m: r.forecast.to_dict() for m, r in choice.per_model.items() if r.forecast},
        comparison=rows, history=tail, history_points=state.ref["points"] if state.ref else len(tail),
        series_ref=state.ref,
        units_done=state.units_done, units_total=state.total, complete=deadline_s is None,
        historical_predictions=historical_answer(series.config, state.ref, units + _historical_mv(series),
                                                 tail, best.spec.model if best else None),
    )
    failures = []
    if deadline_s is not None:
        failures.append(failure(request_id, "deadline", f"only {state.units_done} of {state.total} units "
                                f"arrived within {deadline_s:.0f} s; decided with those", series=name))
    failed_models = sorted({r.spec.model for r in choice.errors} - set(choice.per_model))
    for model in failed_models:
        first = next(r for r in choice.errors if r.spec.model == model)
        failures.append(failure(request_id, "model", f"{model} failed on every unit: {first.error}",
                                series=name, model=model))
    if best is None:
        failures.append(failure(request_id, "model", "no model produced a forecast for this series", series=name))
    return record, failures


@dataclass(frozen=True)
class Answer:
    """A decided series' records, in the order they go out: its failures, its BestModel, its "series_done"."""

    failures: list[FailureRecord]
    best_model: BestModelRecord
    progress: ProgressRecord


def decide_whole(prediction: PredictionRecord, config_json: str, store: SeriesStore) -> Answer | None:
    """A series whose one Prediction holds every validation unit and each model's final refit (a fast-lane
    request's: timex_stream.runtime.fast_lane), decided at once, as validator.book decides such a series in the
    event that brings it (a new series, its units, no refit left to ask, the decision); None when the
    Prediction is not whole. Without xcorr: the fast lane takes no request that asks for it."""
    series = new_series(series_key(prediction["request_id"], prediction["series"]), prediction, config_json, {})
    for unit in units_of(prediction):
        add(series, unit)
    if not validated(series.state) or plan_refits(series) or not is_complete(series.state):
        return None
    if not series.state.has_history and series.state.ref is not None:
        series.tail = history_tail(series, store)
    record, failures = decide(series)
    return Answer(failures, record, progress_of(series, record))


def _historical_mv(series: Series) -> list[UnitResult]:
    """The multivariate historical steps in (validator.multivariate plans them with the stage's units): each
    competes with its model's univariate step (forecasting.historical.choose_steps)."""
    return [outcome_result(u) for u in series.mv_units() if u["unit"].get("historical_end")]


def progress_of(series: Series, decided: BestModelRecord | None = None) -> ProgressRecord:
    """Units done for this series and, once there is one, the best model so far; `decided`: its answer (the
    BestModel record), which names the best."""
    state = series.state
    if decided is not None:
        return progress(state.request_id, "series_done", "", series=state.series, units_done=state.units_done,
                        units_total=state.total, current_best=decided["model"])
    best = choose(series).best if state.units_done else None
    expected = state.refits_expected
    message = f"final forecasts {state.refits_done}/{expected}" if expected is not None else ""
    return progress(state.request_id, "predicting", message, series=state.series, units_done=state.units_done,
                    units_total=state.total, current_best=best.spec.model if best else None)


def mark_decided(series: Series) -> SeriesState:
    """Delete every part (tombstones) and keep the state alone, marked decided: late or duplicate
    predictions must not decide this series again, and a request must not leave kilobytes behind."""
    for key in series.part_keys():
        series.parts.pop(key, None)
    state = series.state
    state.decided, state.decided_at = True, now_ms()
    state.refits_expected, state.refits_done, state.has_history = None, 0, False
    state.mv_total, state.mv_done, state.mv_refit_sent = None, 0, False
    return state


def stall_due(state: SeriesState, now: int, stall_s: float, repaired_at: int = 0, repairs: int = 0) -> bool:
    """No new unit for `stall_s` since the last one (or since the refits were asked, or the last repair): its
    missing units are sent again. Each repair doubles the window: a unit that is only queued behind a long
    request is not lost, and sending it again every window grew the queue it waits in."""
    return now - max(state.last_at, repaired_at) > stall_s * 1000 * 2 ** min(repairs, 10)


def forgettable(state: SeriesState, now: int, forget_s: float) -> bool:
    """A decided marker older than `forget_s` (a grace window longer than any duplicate's delay) may go."""
    return state.decided and now - state.decided_at > forget_s * 1000


def upgrade(key: str, old: dict[str, Any]) -> tuple[SeriesState, dict[str, Any]]:
    """A state written by the versions before (one dict per series, every unit inside) → its `SeriesState`
    and the parts to write under their own keys. Undecided series go on where they were; decided markers
    (no units, no config) stay decided until forgotten."""
    rid, name = (old["request_id"], old["series"]) if "request_id" in old else split_series_key(key)
    units, refits = old.get("units") or {}, old.get("refits") or {}
    stamps, values = old.get("history") or ([], [])
    parts: dict[str, Any] = {_unit_part(key, int(i)): u for i, u in units.items()}
    parts |= {_refit_part(key, m): r for m, r in refits.items()}
    if "config_json" in old:
        parts[part_key(key, "config")] = {"config_json": old["config_json"]}
    if stamps:
        parts[part_key(key, "history")] = {"timestamps": stamps, "values": values}
    if old.get("xcorr"):
        parts[xcorr_part(key)] = {"xcorr_json": old["xcorr"]}
    mv = old.get("mv") or {}
    parts |= {ready_part(key, r): v for r, v in (mv.get("ready") or {}).items()}
    parts |= {mv_unit_part(key, int(i)): u for i, u in (mv.get("units") or {}).items()}
    if mv.get("refit"):
        parts[mv_refit_part(key)] = mv["refit"]
    state = SeriesState(request_id=rid, series=name, total=old["total"], series_total=old["series_total"],
                        estimator=old["estimator"], ref=old.get("ref"), first_at=old.get("first_at", 0),
                        last_at=old.get("last_at", 0),
                        units_done=old.get("decided_units", 0) if old.get("decided") else len(units),
                        refits_done=len(refits), refits_expected=old.get("refits_expected"),
                        has_history=bool(stamps), decided=bool(old.get("decided")),
                        decided_at=old.get("decided_at", 0), announced=bool(old.get("announced")),
                        mv_total=mv.get("total"), mv_done=len(mv.get("units") or {}),
                        mv_refit_sent=bool(mv.get("sent_refit")))
    return state, parts


def encoded_size(value: Any) -> int:
    """Bytes of `value` as the service's tables write it to their changelogs (Faust's json codec; a Record
    with its type tag)."""
    return len(faust.serializers.codecs.dumps("json", value.to_representation() if isinstance(value, faust.Record)
                                              else value))

