"""Request ids are checked, series names escaped: no character can misroute an answer."""

from __future__ import annotations

import pytest

from schemas.keys import (
    InvalidRequestIdError,
    check_request_id,
    escape,
    request_id_problem,
    series_key,
    split_series_key,
    unescape,
    unit_key,
)
from schemas.topics import BY_NAME

ODD_NAMES = ["a/b", "a%2Fb", "%", "%25", "/", "//", "a b", " ", "Umsatz (€) / Monat", "温度/湿度", "e\u0301",
             "\U0001f600/\u200b", "x" * 1000, "a/b/" * 50, "\n\t", "", "%2", "%%2F/"]


@pytest.mark.parametrize("name", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_any_series_name_round_trips_through_its_keys(name: str) -> None:
    assert unescape(escape(name)) == name and "/" not in escape(name)
    assert split_series_key(series_key("req-1", name)) == ("req-1", name)
    key = unit_key("req-1", name, 17)
    assert key.count("/") == 2 and key.rsplit("/", 1) == [series_key("req-1", name), "17"]
    datasets = BY_NAME["datasets"]
    # Placement is by the trailing unit index: consecutive units on consecutive partitions.
    assert (datasets.partition_of(unit_key("req-1", name, 1)) - datasets.partition_of(key.rsplit("/", 1)[0] + "/0")
            ) % datasets.partitions == 1


def test_distinct_names_never_share_a_key() -> None:
    keys = {series_key("r", n) for n in ODD_NAMES}
    assert len(keys) == len(ODD_NAMES)
    assert series_key("a", "b/c") != series_key("a/b", "c")


@pytest.mark.parametrize("rid", ["a", "0", "f3a9c2d1e8b74c5a", "configs-3-1042-1764400000000", "team.sales:2026-11_a",
                                 "A" * 128])
def test_valid_request_ids(rid: str) -> None:
    assert request_id_problem(rid) is None and check_request_id(rid) == rid


@pytest.mark.parametrize("rid", ["", "a/b", "a b", " a", "a\n", "x" * 129, "x" * 1000, "..", ".hidden", "-rf",
                                 "é", "a%2F", "a?b", "a#b", "a\\b", "a\x00"])
def test_invalid_request_ids_are_refused_in_plain_words(rid: str) -> None:
    problem = request_id_problem(rid)
    assert problem and "not valid" in problem and "letters" in problem
    assert len(problem) < 300  # a 1,000-character id is shortened in the message
    with pytest.raises(InvalidRequestIdError):
        check_request_id(rid)


def test_a_reselection_id_names_its_standing_request_and_is_never_a_users_id() -> None:
    from schemas.keys import request_id_problem, reselection_id, reselection_of

    rid = reselection_id("shop:live-1", 120)
    assert reselection_of(rid) == ("shop:live-1", 120)
    assert request_id_problem(rid) is not None  # "~": no user can submit it
    assert reselection_of("shop:live-1") is None and reselection_of("x~reselect-") is None
