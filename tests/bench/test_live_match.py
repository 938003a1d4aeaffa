"""bench/live_match.py: which revision first includes each observation, and the live bench's rate search."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "live_match.py"
_SPEC = importlib.util.spec_from_file_location("live_match", _PATH)
assert _SPEC and _SPEC.loader
lm = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("live_match", lm)  # its dataclass looks its module up
_SPEC.loader.exec_module(lm)


def test_each_observation_is_matched_to_the_first_revision_that_includes_it() -> None:
    # Series a: observations 31, 32, 33 produced at 0, 10, 20 ms; revision 32 written at 50 (folds 31 and 32),
    # revision 33 at 70. Series b: observation 5 at 5 ms, revision 5 at 9.
    observations = {"a": [(31, 0.0), (32, 10.0), (33, 20.0)], "b": [(5, 5.0)]}
    revisions = {"a": [(30, 1.0), (32, 50.0), (33, 70.0)], "b": [(5, 9.0)]}
    out = lm.match(observations, revisions)
    assert sorted(out.delays_ms) == [4.0, 40.0, 50.0, 50.0] and out.lost == 0


def test_an_observation_no_revision_reaches_is_lost() -> None:
    out = lm.match({"a": [(1, 0.0), (2, 1.0)], "b": [(1, 0.0)]}, {"a": [(1, 3.0)]})
    assert out.delays_ms == [3.0] and out.lost == 2  # a's second and b's only one


def test_a_revision_written_again_later_never_moves_an_observation_earlier_or_later() -> None:
    # A restart writes revision 2 a second time, after 3: the first write of each number counts.
    out = lm.match({"a": [(2, 0.0), (3, 0.0)]}, {"a": [(2, 10.0), (3, 20.0), (2, 30.0)]})
    assert out.delays_ms == [10.0, 20.0]


def test_quantile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert lm.quantile(values, 0.5) == 50.0 and lm.quantile(values, 0.99) == 99.0 and lm.quantile([], 0.5) is None


def test_the_rate_search_doubles_then_takes_one_step_between() -> None:
    assert lm.next_rate([(1000, True)], ceiling=16000, floor=100) == 2000
    assert lm.next_rate([(1000, True), (2000, True), (4000, False)], 16000, 100) == pytest.approx(2828.427)
    assert lm.next_rate([(1000, True), (2000, True), (4000, False), (2828, True)], 16000, 100) is None
    assert lm.next_rate([(8000, True)], ceiling=10000, floor=100) is None  # the ceiling
    assert lm.next_rate([(1000, False)], 16000, 100) == 500  # halved while it misses
    assert lm.next_rate([(1000, False), (500, True)], 16000, 100) == pytest.approx(707.107)
    assert lm.next_rate([(200, False), (100, False)], 16000, 100) is None  # the floor


@pytest.mark.parametrize("revision", [0, 1, 63, 64, 8191, 8192, 10**6, 2**40])
def test_a_revisions_number_is_read_from_its_bytes_as_a_decode_gives_it(revision: int) -> None:
    from schemas import encode
    from timex_stream.runtime.records import forecast_revision

    forecast = {"timestamps": ["2026-01-02T00:00:00"], "yhat": [1.5], "lower_80": None, "upper_80": None,
                "lower_95": None, "upper_95": None}
    for rid, series in (("r-1", "sales"), ("", ""), ("é" * 70, "中" * 50)):  # one- and two-byte lengths
        record = forecast_revision(rid, series, revision, "2026-01-01T00:00:00", 1, forecast, model="naive",  # type: ignore[arg-type]
                                   transformation="none", window=0)
        assert lm.revision_number(encode("ForecastRevision", record)) == revision


def test_a_revision_of_another_schema_version_is_decoded() -> None:
    from schemas import encode
    from timex_stream.runtime.records import forecast_revision

    forecast = {"timestamps": [], "yhat": [], "lower_80": None, "upper_80": None, "lower_95": None, "upper_95": None}
    written = encode("ForecastRevision", forecast_revision("r", "s", 42, "", 1, forecast, model="naive",  # type: ignore[arg-type]
                                                           transformation="none", window=0))
    with pytest.raises(Exception, match="fingerprint"):  # noqa: PT011 (the codec's own error: an unknown writer)
        lm.revision_number(written[:2] + b"\0" * 8 + written[10:])


def test_the_p99_of_each_group_of_series_is_its_own() -> None:
    # theta-0's observations wait 100 ms each, naive-0's and naive-1's 5 and 7: each model's tail apart.
    observations = {"theta-0": [(n, 0.0) for n in range(1, 101)], "naive-0": [(1, 0.0)], "naive-1": [(1, 0.0)]}
    revisions = {"theta-0": [(100, 100.0)], "naive-0": [(1, 5.0)], "naive-1": [(1, 7.0)]}
    assert lm.p99_by_group(observations, revisions, lambda s: s.rsplit("-", 1)[0]) == {"naive": 7.0, "theta": 100.0}
    assert lm.p99_by_group({}, revisions, str) == {}
