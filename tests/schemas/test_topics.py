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
