import itertools
from collections import Counter

from schemas import CATALOGUE, CODEC, series_key
from schemas.topics import BY_NAME, unit_key


def test_catalogue_names_are_unique_and_values_known() -> None:
    assert len(BY_NAME) == len(CATALOGUE)
    for t in CATALOGUE:
        assert t.value is None or t.value in CODEC.current, t.name
        assert t.partitions >= 1 and t.retention_ms > 0


def test_flow_topics_present_with_design_keys() -> None:
    assert BY_NAME["configs"].key == "request_id"
    assert BY_NAME["predictions"].key == "request_id/series"
    assert BY_NAME["datasets"].key == "request_id/series/unit"
    for name in ("best-models", "failures", "progress"):
        assert BY_NAME[name].key == "request_id"
    # Units of one series must meet in one validator partition: predictions keyed like datasets.
    assert BY_NAME["datasets"].partitions == BY_NAME["predictions"].partitions


def test_keys() -> None:
    assert series_key("r1", "sales") == "r1/sales"
    assert unit_key("r1", "sales", 3) == "r1/sales/3"
    assert unit_key("r1", "a/b%2F c", 3) == "r1/a%2Fb%252F c/3"  # series names escaped: one "/" per part


def test_datasets_go_round_robin_by_unit_index_others_by_key_hash() -> None:
    datasets = BY_NAME["datasets"]
    for series in ("sales", "visitors", "a/b", "7", "x/1/2", "é 100%"):
        placed = [datasets.partition_of(unit_key("r1", series, i)) for i in range(40)]
        assert all((b - a) % datasets.partitions == 1 for a, b in itertools.pairwise(placed)), placed
        assert Counter(placed) == dict.fromkeys(range(datasets.partitions), 40 // datasets.partitions)
    starts = {datasets.partition_of(unit_key(f"r{n}", "sales", 0)) for n in range(20)}
    assert len(starts) > 1  # series start at partitions of their own, not all at 0
    assert all(BY_NAME[name].partition_of("r1/sales") is None for name in ("predictions", "configs"))
