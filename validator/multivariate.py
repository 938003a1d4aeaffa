"""The validator's share of TIMEX's multivariate stage, kept apart from the per-series flow it hooks into.

The ingestion computed each series' cross-correlations (forecasting.xcorr) and stored them with the
series' first chunk; the validator reads them once, when the series' state is created, and the answer
carries them ("xcorr"), with the univariate best ("univariate") and which one was kept ("kept").
"""

from __future__ import annotations

from typing import Any

from forecasting.xcorr import SeriesXcorr
from timex_stream.series_store import SeriesStore

State = dict[str, Any]


def read_xcorr(store: SeriesStore, ref: dict[str, Any] | None) -> str | None:
    """This series' xcorr (JSON) from its first chunk; None when the request asked for none. Blocking."""
    if ref is None or not ref.get("offsets"):
        return None
    return store.records(ref["partition"], ref["offsets"][:1])[0].get("xcorr_json")


def xcorr_of(state: State) -> SeriesXcorr | None:
    text = state.get("xcorr")
    return SeriesXcorr.from_json(text) if text else None


def candidate(record: dict[str, Any], regressors: list[str] | None = None) -> dict[str, Any] | None:
    """A BestModel's chosen model as the answer's "univariate"/"multivariate" entry."""
    if record["model"] is None:
        return None
    return {"model": record["model"], "transformation": record["transformation"], "metrics": dict(record["metrics"]),
            "forecast": record["forecast"], "regressors": list(regressors or [])}


def answer_fields(state: State, record: dict[str, Any]) -> dict[str, Any]:
    """The answer's xcorr keys for a series decided univariately."""
    found = xcorr_of(state)
    if found is None:
        return {"xcorr": None, "univariate": None, "multivariate": None, "kept": None}
    return {"xcorr": found.answer(), "univariate": candidate(record), "multivariate": None,
            "kept": "univariate" if record["model"] is not None else None}
