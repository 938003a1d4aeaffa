"""The fan-out's publish sequence without a broker: a fake in-memory `Sender` records the order of the sends
and lands each record at a made-up offset, so the ordering rules are checked on their own: the index entry
first; "accepted", the config and the series before any unit, the units carrying where those landed; the
units before the failures and "ingested"; a request that fails early publishes no unit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pytest

from forecasting.config import parse_config
from schemas import Topic
from tests.flow.conftest import make_config, synthetic_frame
from timex_stream.runtime.fan_out import Landed, Outcome, ProducerSender, accepted, fan_out, publish
from timex_stream.runtime.intake import Position
from timex_stream.runtime.kafka import producer
from timex_stream.runtime.records import failure
from timex_stream.runtime.request_index import index_record

RID = "req-fan"
PARTITION = 2  # every record of a request is on its request id's partition


class FakeSender:
    """Every record sent, in order; a record lands at offset 100 + its place in that order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.sent_before_landed: int | None = None  # how many records were sent when `landed` was awaited

    async def send(self, topic: Topic, key: str, record: dict[str, Any]) -> int:
        self.sent.append((topic.name, key, record))
        return len(self.sent) - 1

    async def landed(self, handles: Sequence[Any]) -> list[Landed]:
        self.sent_before_landed = len(self.sent)
        return [(PARTITION, 100 + h) for h in handles]

    def topics(self) -> list[str]:
        return [topic for topic, _, _ in self.sent]

    def offset_of(self, match: Any) -> int:
        return 100 + next(i for i, (topic, _, record) in enumerate(self.sent) if match(topic, record))


def planned(columns: list[str], models: str = "naive,exponentialsmoothing") -> Outcome:
    parsed = parse_config(make_config("http://127.0.0.1:1/x.csv", columns, models=models))
    frame = synthetic_frame()
    index = pd.DatetimeIndex(pd.to_datetime(frame["date"]), freq="MS")
    series = {name: pd.Series(frame[name].to_numpy(), index=index, name=name) for name in columns}
    out = Outcome(RID, progress=[accepted(RID, parsed, None)])
    out.failures.append(failure(RID, "data", "a column that could not be read", series="label"))
    return fan_out(out, parsed.config, series, None)


def index() -> dict[str, Any]:
    return index_record(RID, Position(PARTITION, 7, 1_000))


def run(out: Outcome) -> tuple[FakeSender, list[tuple[str, dict[str, Any]]]]:
    sender = FakeSender()
    units = asyncio.run(publish(sender, index(), out))
    return sender, units


def test_the_index_entry_goes_first_then_accepted_and_the_stored_parts() -> None:
    out = planned(["seasonal", "walk"])
    sender, _ = run(out)
    topics = sender.topics()
    assert sender.sent[0] == ("requests", RID, index())
    assert sender.sent[1][0] == "progress" and sender.sent[1][2]["stage"] == "accepted"
    stored = len(out.stored)
    assert stored == 3  # the config, then each series once
    assert topics[2:2 + stored] == ["series"] * stored
    assert [record["series"] for _, _, record in sender.sent[2:2 + stored]] == [None, "seasonal", "walk"]
    # The units are built from where the parts landed: no unit is sent before the parts are acknowledged.
    assert sender.sent_before_landed == 2 + stored
    assert "datasets" not in topics[:sender.sent_before_landed]


def test_the_units_point_at_where_their_series_and_config_landed() -> None:
    out = planned(["seasonal", "walk"])
    sender, units = run(out)
    config_at = sender.offset_of(lambda t, r: t == "series" and r["series"] is None)
    sent_units = [record for topic, _, record in sender.sent if topic == "datasets"]
    assert [record for _, record in units] == sent_units and len(sent_units) > 2  # several records per series
    for name in ("seasonal", "walk"):
        series_at = sender.offset_of(lambda t, r, name=name: t == "series" and r["series"] == name)
        refs = [u["ref"] for u in sent_units if u["series"] == name]
        assert refs and all(ref["partition"] == PARTITION and ref["config_offset"] == config_at for ref in refs)
        assert all(ref["offsets"] == [series_at] for ref in refs)


def test_the_units_go_before_the_failures_and_ingested() -> None:
    out = planned(["seasonal"])
    sender, units = run(out)
    topics = sender.topics()
    last_unit = max(i for i, t in enumerate(topics) if t == "datasets")
    tail = sender.sent[last_unit + 1:]
    assert [t for t, _, _ in tail] == ["failures", "progress"]
    assert tail[0][2]["message"] == "a column that could not be read" and tail[1][2]["stage"] == "ingested"
    assert tail[1][2]["units_total"] == sum(1 + len(u["more"]) for _, u in units) == out.units


def test_a_request_that_fails_before_planning_sends_its_index_entry_and_failure_only() -> None:
    """A config that does not parse (no "accepted"), or a request past its limits: the index entry, so readers
    find it, then its failure; nothing on `series` or `datasets`."""
    refused = Outcome(RID, failures=[failure(RID, "config", "not a TIMEX config", fatal=True)])
    sender, units = run(refused)
    assert units == [] and sender.topics() == ["requests", "failures"]
    assert sender.sent_before_landed == 1  # nothing stored: nothing to wait for
    parsed = parse_config(make_config("http://127.0.0.1:1/x.csv", ["walk"], prediction_lags=1_000_000_000))
    frame = synthetic_frame()
    series = {"walk": pd.Series(frame["walk"].to_numpy(),
                                index=pd.DatetimeIndex(pd.to_datetime(frame["date"]), freq="MS"), name="walk")}
    over = fan_out(Outcome(RID, progress=[accepted(RID, parsed, None)]), parsed.config, series, None)
    sender, units = run(over)
    assert units == [] and sender.topics() == ["requests", "progress", "failures"]
    assert sender.sent[-1][2]["stage"] == "limits" and sender.sent[-1][2]["fatal"]


def test_positions_must_match_the_stored_parts() -> None:
    """A sender that lost a part's delivery cannot yield units pointing at the wrong records."""
    out = planned(["walk"])

    class Short(FakeSender):
        async def landed(self, handles: Sequence[Any]) -> list[Landed]:
            return (await super().landed(handles))[:-1]

    sender = Short()
    with pytest.raises(ValueError, match="positions for"):
        asyncio.run(publish(sender, index(), out))
    assert "datasets" not in sender.topics()


def test_the_replay_sender_stops_before_the_units_when_the_parts_are_not_acknowledged() -> None:
    """Nothing listens on port 1: the SeriesParts are never acknowledged, so no unit can say where they are."""
    sender = ProducerSender(producer("127.0.0.1:1"), timeout_s=0.5)
    units: list[Any] = []

    async def carry_out() -> None:
        units.extend(await publish(sender, index(), planned(["walk"])))

    with pytest.raises(TimeoutError, match="did not acknowledge"):
        asyncio.run(carry_out())
    assert units == []
