"""A request past a limit on the real stack: the original hostile config (prediction_lags 1e9, which used to
exhaust each final refit's memory) fails at once in plain words, plans no unit, and the system goes on."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from confluent_kafka import Producer

from schemas.topics import DATASETS
from tests.plugins.flows import TIMEOUT
from timex_stream.runtime.history import read_range
from timex_stream.runtime.records import now_ms
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack


def test_the_hostile_config_fails_plans_nothing_and_the_next_request_is_answered(
        stack: Stack, producer_: Producer, serve_csv: Callable, config_for: Callable, frame_: pd.DataFrame) -> None:
    url = serve_csv("limits.csv", frame_)
    since = now_ms() - 5_000  # the broker stamps records with this machine's clock; a margin for rounding
    hostile = submit(producer_, config_for(url, ["walk", "trend"], prediction_lags=1_000_000_000))
    view = follow(stack.bootstrap, [hostile], TIMEOUT)[hostile]
    assert view.status == "failed", view.to_dict()
    (fatal,) = view.failures
    assert fatal["fatal"] and fatal["stage"] == "limits"
    assert fatal["message"] == ("model_parameters.prediction_lags: 1000000000 is over the limit of 10000 "
                                "(TIMEX_MAX_PREDICTION_LAGS)")

    good = submit(producer_, config_for(url, ["walk"], models="naive"))
    assert follow(stack.bootstrap, [good], TIMEOUT)[good].status == "done"
    keys = [(msg.key() or b"").decode() for msg in read_range(stack.bootstrap, DATASETS.name, since)]
    assert any(key.startswith(f"{good}/") for key in keys)  # the read sees what the requests planned
    assert not [key for key in keys if key.startswith(f"{hostile}/")]
