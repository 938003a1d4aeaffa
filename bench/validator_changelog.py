"""Bytes the validator writes to its table changelogs per unit: `python bench/validator_changelog.py
[--points 240] [--delta 2] [--models naive,seasonal_naive,theta,persistence,mockup,exponentialsmoothing]`.

Starts an embedded broker and the three stream services (bench/scale_common.running), sends one request of
one monthly series with many units (every model × every window), follows it to its answer, then reads every
`timex-validator-*-changelog` topic from the start and sums the bytes (key + value, as produced) of the
records of that series' keys. Prints one JSON line: units, prediction records, changelog records and bytes,
bytes per unit, the largest changelog record, and the changelog topics' bytes on the broker's disk.
Run it with PYTHONPATH at an older checkout to measure the validator that kept every unit in one record
(`git archive <commit> | tar -x -C DIR`, then `PYTHONPATH=DIR python DIR/bench/validator_changelog.py` with this
file copied there).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import OFFSET_BEGINNING, TopicPartition  # noqa: E402

from bench.scale_common import print_json, running  # noqa: E402
from schemas.keys import series_key  # noqa: E402
from timex_stream.runtime.kafka import admin, consumer  # noqa: E402

MODELS = "naive,seasonal_naive,theta,persistence,mockup,exponentialsmoothing"


def csv(points: int) -> bytes:
    rows = [f"{1900 + i // 12}-{i % 12 + 1:02d}-01,{100 + 10 * math.sin(i / 1.9) + (i * 7) % 13 + i * 0.3:.3f}"
            for i in range(points)]
    return ("date,sales\n" + "\n".join(rows) + "\n").encode()


def changelog_records(bootstrap: str, prefix: str) -> dict[str, list[int]]:
    """Sizes (key + value bytes) of the records whose key starts with `prefix`, per validator changelog, read
    from the start of every partition to its end (Faust writes table keys as JSON strings)."""
    topics = admin(bootstrap).list_topics(timeout=10).topics
    names = [t for t in topics if t.startswith("timex-validator-") and t.endswith("-changelog")]
    cons = consumer(bootstrap, f"bench-changelog-{time.monotonic_ns()}")
    ends = {}
    for name in names:
        for p in topics[name].partitions:
            low, high = cons.get_watermark_offsets(TopicPartition(name, p), timeout=10)
            if high > low:
                ends[(name, p)] = high
    cons.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
    sizes: dict[str, list[int]] = {t: [] for t in names}
    deadline = time.monotonic() + 120
    try:
        while ends and time.monotonic() < deadline:
            msg = cons.poll(0.5)
            if msg is None or msg.error():
                continue
            if msg.offset() + 1 >= ends.get((msg.topic(), msg.partition()), 0):
                ends.pop((msg.topic(), msg.partition()), None)
            key = msg.key() or b""
            if json.loads(key).startswith(prefix):
                sizes[msg.topic()].append(len(key) + len(msg.value() or b""))
    finally:
        cons.close()
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=240, help="monthly points of the one series")
    parser.add_argument("--delta", type=float, default=2.0, help="delta_training_percentage (smaller: more windows)")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--concurrency", type=int, default=2, help="pool workers of the predictor")
    args = parser.parse_args()
    config = {"activity_title": "validator changelog bench",
              "input_parameters": {"source_data_url": "", "index_column_name": "date", "frequency": "MS"},
              "model_parameters": {"models": args.models, "possible_transformations": "none",
                                   "main_accuracy_estimator": "mae", "test_values": 6,
                                   "delta_training_percentage": args.delta, "prediction_lags": 6}}
    with running(args.concurrency) as run:
        run.files["one.csv"] = csv(args.points)
        config["input_parameters"]["source_data_url"] = f"{run.base_url}/one.csv"
        wall, view, _ = run.run(config, timeout=1800)
        answer = view.results["sales"]
        bootstrap = run.kafka.bootstrap_servers
        sizes = changelog_records(bootstrap, series_key(view.request_id, "sales"))
        logs = run.kafka.data_dir / "kraft-logs"
        disk = {d.name: sum(f.stat().st_size for f in d.glob("*.log"))
                for d in logs.glob("timex-validator-*-changelog-*") if d.is_dir()}
    units = answer["units_total"]
    written = [s for per_topic in sizes.values() for s in per_topic]
    print_json({"points": args.points, "models": args.models.count(",") + 1, "units": units,
                "answered": answer["model"], "wall_s": round(wall, 1), "status": view.status,
                "changelog_records": {t: len(s) for t, s in sizes.items()},
                "changelog_bytes": sum(written), "bytes_per_unit": round(sum(written) / units),
                "largest_record": max(written, default=0),
                "changelog_disk_bytes": sum(disk.values())})


if __name__ == "__main__":
    main()
