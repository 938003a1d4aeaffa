"""The live service's admission of a standing request (live/admission.py) and the record rate it takes from a
source topic (live/pace.py), without a broker; tests/live/test_limits.py checks both on the real one."""

from __future__ import annotations

from live.admission import admit
from live.pace import Pace
from timex_stream.runtime.settings import Settings

SETTINGS = Settings(live_max_requests=3, live_max_requests_per_user=2)


def test_requests_are_counted_in_all_and_per_owner_with_kafka_as_the_owner_of_those_without() -> None:
    assert admit("ann", [{"owner": "ann"}, {"owner": None}], SETTINGS) is None
    refused = admit("ann", [{"owner": "ann"}, {"owner": "ann"}], SETTINGS)
    assert refused is not None and "ann has 2 active" in refused and "TIMEX_LIVE_MAX_REQUESTS_PER_USER" in refused
    refused = admit(None, [{"owner": None}, {"owner": "kafka"}], SETTINGS)  # sent straight to Kafka: "kafka"
    assert refused is not None and refused.startswith("kafka has 2")
    refused = admit("bob", [{"owner": "ann"}, {"owner": None}, {"owner": "cid"}], SETTINGS)
    assert refused is not None and "at most 3 (TIMEX_LIVE_MAX_REQUESTS)" in refused


def test_the_pace_takes_a_seconds_worth_then_the_rate() -> None:
    now = [0.0]
    pace = Pace(100, clock=lambda: now[0])
    assert pace.allowance(500) == 100  # a full second's worth at the start
    pace.took(100)
    assert pace.allowance(500) == 0 and abs(pace.wait_s() - 0.2) < 1e-9  # a chunk: 0.2 s worth
    now[0] = 0.1
    assert pace.allowance(500) == 0  # half a chunk: not yet (one record a poll is one revision a record)
    now[0] = 0.25
    assert pace.allowance(500) == 25
    pace.took(10)  # the poll gave fewer than allowed: the rest stays for later
    assert pace.allowance(500) == 0  # 15 left: less than a chunk
    now[0] = 0.3
    assert pace.allowance(500) == 20
    now[0] = 10.0
    assert pace.allowance(500) == 100  # idle time does not build a bigger burst than a second's
    assert Pace(0).allowance(500) == 500 and Pace(0).wait_s() == 0  # 0: no limit
