"""The live service's accuracy metrics keep their label sets bounded: a gauge per series for the first
`cap` series only, aggregates for all, and a stopped request frees its slots."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from live.accuracy import AccuracyMetrics


def _revision(series: str, error: float, validation: float = 1.0) -> dict:
    return {"series": series, "accuracy": {"error": error, "validation_error": validation,
                                           "threshold": 1.5 * validation}}


def test_labels_stop_at_the_cap_and_the_aggregates_count_every_series() -> None:
    registry = CollectorRegistry()
    metrics = AccuracyMetrics(registry, cap=3)
    for i in range(10):
        metrics.observe("r1", _revision(f"s{i}", error=2.0 if i % 2 else 1.0))
    labelled = {s.labels["series"] for m in registry.collect() if m.name == "timex_live_rolling_error"
                for s in m.samples}
    assert labelled == {"s0", "s1", "s2"}
    assert registry.get_sample_value("timex_live_series_over_threshold") == 5  # every odd one: 2.0 > 1.5
    assert registry.get_sample_value("timex_live_error_ratio_count") == 10
    metrics.observe("r1", _revision("s1", error=1.0))  # back under: no longer counted
    assert registry.get_sample_value("timex_live_series_over_threshold") == 4
    metrics.forget("r1")
    metrics.observe("r2", _revision("x", error=0.5))
    assert registry.get_sample_value("timex_live_rolling_error", {"request_id": "r2", "series": "x"}) == 0.5
    assert registry.get_sample_value("timex_live_rolling_error", {"request_id": "r1", "series": "s0"}) is None
    assert registry.get_sample_value("timex_live_series_over_threshold") == 0
    metrics.reselected("drift", "switched")
    assert registry.get_sample_value("timex_live_reselections_total", {"reason": "drift", "outcome": "switched"}) == 1
