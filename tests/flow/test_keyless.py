"""Exactly once for a key-less plain JSON config: its request id is derived from where it sits on `configs`,
so the ingestion consuming it again (a redelivery after a crash) answers the same request, not a second one."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable

import pandas as pd
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition

from schemas import decode_as
from schemas.topics import CONFIGS, DATASETS, PREDICTIONS, PROGRESS
from tests.plugins.flows import TIMEOUT, best_models_for
from tests.plugins.gateways import Gateway
from tests.plugins.waiting import wait_until
from timex_stream.runtime.intake import derived_request_id, position_of
from timex_stream.runtime.kafka import admin, consumer
from timex_stream.tools.follow import follow
from timex_stream.tools.stack import Stack, wait_for_members


def test_keyless_config_consumed_twice_is_one_request_with_one_answer_per_series(
        stack: Stack, serve_csv: Callable, config_for: Callable, frame_: pd.DataFrame,
        launch_gateway: Callable[..., Gateway]) -> None:
    title = f"keyless-once-{uuid.uuid4().hex[:8]}"
    config = config_for(serve_csv("keyless-once.csv", frame_), ["walk", "trend"], models="naive") | {
        "activity_title": title}
    delivered = []
    bare = Producer({"bootstrap.servers": stack.bootstrap})  # any Kafka client: plain JSON, no key
    bare.produce(CONFIGS.name, value=json.dumps(config).encode(), on_delivery=lambda err, msg: delivered.append(msg))
    assert bare.flush(10) == 0 and delivered[0].error() is None
    where = position_of(delivered[0])
    rid = derived_request_id(where)

    view = follow(stack.bootstrap, [rid], TIMEOUT)[rid]
    assert view.status == "done" and set(view.results) == {"walk", "trend"} and view.title == title
    # The gateway's store folds the same record and derives the same id.
    gw = launch_gateway("gateway-keyless")
    with urllib.request.urlopen(f"{gw.url}/api/requests/{rid}", timeout=10) as resp:
        doc = json.loads(resp.read())
    assert doc["request_id"] == rid and doc["title"] == title and doc["origin"] == "kafka" and doc["status"] == "done"

    # Consume it again: stop the ingestion, move its group back to the record, start it again.
    ingestion = stack.children["ingestion"]
    ingestion.send_signal(signal.SIGTERM)
    assert ingestion.wait(60) == 0
    _rewind(stack.bootstrap, "timex-ingestion", TopicPartition(CONFIGS.name, where.partition, where.offset))
    stack.launch("ingestion")
    wait_for_members(stack.bootstrap, "timex-ingestion", CONFIGS.name, 1)
    # The second ingestion said "accepted" under the same id.
    wait_until(lambda: _accepted(stack.bootstrap, rid) >= 2, TIMEOUT, what="the ingestion consuming the config again")
    # Its units ran again and reached the validator, which had decided both series already.
    for group, topic in (("timex-predictor", DATASETS.name), ("timex-validator", PREDICTIONS.name)):
        _wait_drained(stack.bootstrap, group, topic)
    assert Counter(best_models_for(stack.bootstrap, rid)) == Counter({"walk": 1, "trend": 1})
    listed = [r for r in _listing(gw) if r["title"] == title]
    assert [r["request_id"] for r in listed] == [rid]


def _rewind(bootstrap: str, group: str, tp: TopicPartition, timeout: float = 60.0) -> None:
    """Set the group's committed offset (the group has no member: its only one was just stopped)."""
    client = admin(bootstrap)

    def rewound() -> bool:
        try:
            client.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [tp])])[group].result()
            return True
        except KafkaException:  # the stopped member may still count until its leave is processed
            return False

    wait_until(rewound, timeout, what=f"{group} rewound to {tp.offset}", interval=1)


def _accepted(bootstrap: str, rid: str) -> int:
    """How many "accepted" progress records `rid` has (one per ingestion of its config)."""
    cons = consumer(bootstrap, f"t-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True})
    try:
        cons.subscribe([PROGRESS.name])
        count, eofs, deadline = 0, set(), time.monotonic() + 30
        while len(eofs) < PROGRESS.partitions and time.monotonic() < deadline:
            msg = cons.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                eofs.add(msg.partition())
                continue
            if msg.key() == rid.encode() and decode_as("Progress", msg.value())["stage"] == "accepted":
                count += 1
        return count
    finally:
        cons.close()


def _wait_drained(bootstrap: str, group: str, topic: str, timeout: float = TIMEOUT) -> None:
    """Wait until `group` has committed up to the end of every partition of `topic`."""
    client, cons = admin(bootstrap), consumer(bootstrap, f"t-{uuid.uuid4().hex[:8]}")
    partitions = [TopicPartition(topic, p) for p in range(4)]

    def drained() -> bool:
        marks = {tp.partition: cons.get_watermark_offsets(tp, timeout=10) for tp in partitions}
        committed = client.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, partitions)])[group].result().topic_partitions
        return all(marks[tp.partition][0] == marks[tp.partition][1] or tp.offset >= marks[tp.partition][1]
                   for tp in committed)

    try:
        wait_until(drained, timeout, what=f"{group} caught up on {topic}", interval=1)
    finally:
        cons.close()


def _listing(gw: Gateway) -> list[dict]:
    with urllib.request.urlopen(f"{gw.url}/api/requests?limit=1000", timeout=10) as resp:
        return json.loads(resp.read())["requests"]
