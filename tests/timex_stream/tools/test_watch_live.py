"""`timex-stream watch` of a live (standing) request, against the real broker and the stack's live service: the
results document, then one JSON document per revision as points arrive (`--output json`, one a line) until the
request is stopped; then, in a table,
its first answer and one line per revision; `--timeout` ends following a live request that goes on."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from confluent_kafka import Producer

from tests.plugins.live_source import LIVE_MIN_POINTS, day_stamp, day_value, live_config, produce_days
from tests.plugins.waiting import wait_until
from timex_stream.runtime.submit import stop_standing, submit
from timex_stream.tools.follow import snapshot
from timex_stream.tools.stack import Stack

TIMEOUT = 120
FIRST = LIVE_MIN_POINTS + 1  # with no lateness a day is final once the next one is seen: one more point


def _revision(bootstrap: str, rid: str) -> int:
    view = snapshot(bootstrap, [rid])[rid]
    return view.live["sales"].latest["revision"] if "sales" in view.live else -1


def test_watch_follows_the_revisions_until_stopped(stack: Stack, producer_: Producer, live_source: str,
                                                   cli: Callable[..., tuple[int, str, str]]) -> None:
    produce_days(producer_, live_source, range(FIRST))
    rid = submit(producer_, live_config(live_source))
    problems: list[BaseException] = []

    def meanwhile() -> None:  # while watch runs: more points, then stop
        try:
            wait_until(lambda: _revision(stack.bootstrap, rid) == FIRST, TIMEOUT, "the first revision")
            produce_days(producer_, live_source, range(FIRST, FIRST + 3))
            wait_until(lambda: _revision(stack.bootstrap, rid) == FIRST + 3, TIMEOUT, "the last revision")
            stop_standing(producer_, rid)
        except BaseException as exc:
            problems.append(exc)
            stop_standing(producer_, rid)

    thread = threading.Thread(target=meanwhile)
    thread.start()
    code, out, err = cli("watch", rid, "--output", "json")
    thread.join(TIMEOUT)
    assert not problems, problems
    assert code == 0, err
    answer, *docs = [json.loads(line) for line in out.splitlines()]  # one JSON document per line
    assert answer["request_id"] == rid and answer["results"]["sales"]["model"] in {"naive", "seasonal_naive"}
    assert [d["revision"] for d in docs][0] == FIRST and docs[-1]["revision"] == FIRST + 3, docs
    assert [d["revision"] for d in docs] == sorted({d["revision"] for d in docs})
    last = docs[-1]
    assert last["request_id"] == rid and last["series"] == "sales" and last["model"] in {"naive", "seasonal_naive"}
    assert last["last_timestamp"] == day_stamp(FIRST + 2) and last["last_value"] == day_value(FIRST + 2)
    assert last["next_timestamp"].startswith(day_stamp(FIRST + 3)[:10])
    assert last["next_forecast"] == last["forecast"]["yhat"][0]
    assert last["estimator"] == "mae" and last["rolling_error"] == last["accuracy"]["error"] is not None

    # The request is stopped: watch shows its first answer and its revisions, then ends at once.
    code, out, err = cli("watch", rid)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == rid and lines[1].startswith(f"request {rid}: done")
    assert any(line.split()[:2] == ["sales", last["model"]] for line in lines[2:5])  # the results table
    revision_lines = [line for line in lines if line.startswith("sales  revision ")]
    assert revision_lines[-1].startswith(f"sales  revision {FIRST + 3}  last {day_stamp(FIRST + 2)[:10]} "
                                         f"{day_value(FIRST + 2):.4g}  next {day_stamp(FIRST + 3)[:10]} ")
    assert f"  mae {last['rolling_error']:.4g}  {last['model']}" in revision_lines[-1]


def test_watch_timeout_ends_following_a_live_request(stack: Stack, producer_: Producer, live_source: str,
                                                     cli: Callable[..., tuple[int, str, str]]) -> None:
    produce_days(producer_, live_source, range(FIRST))
    rid = submit(producer_, live_config(live_source))
    try:
        wait_until(lambda: _revision(stack.bootstrap, rid) == FIRST, TIMEOUT, "the first revision")
        code, out, err = cli("watch", rid, "--timeout", "3")
        assert code == 0, err
        assert [line for line in out.splitlines() if line.startswith("sales  revision ")] == [
            line for line in out.splitlines() if line.startswith(f"sales  revision {FIRST} ")]
    finally:
        stop_standing(producer_, rid)
