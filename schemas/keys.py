"""Request ids and the Kafka keys built from them, safe whatever a user names a series.

A request id is checked wherever one enters the system (gateway, CLI/submit, a Kafka producer's key): it is
a URL path segment, a Kafka key, a file name in a download and part of every series key, so only
`REQUEST_ID_RULE` characters are allowed. Series names are user data (CSV column names: `/`, spaces,
any Unicode, any length), so they are not checked but escaped inside keys: `%` and `/` are percent-encoded,
and a key always splits back into exactly the parts it was built from.
"""

from __future__ import annotations

import re

REQUEST_ID_MAX = 128
# Letters, digits and . _ : - ; starts with a letter or digit (never "." or "..", never "-" like an option).
REQUEST_ID_RULE = f"1 to {REQUEST_ID_MAX} characters: letters A-Z a-z, digits 0-9 and . _ : -, starting with a " \
                  "letter or a digit"
REQUEST_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:-]*$"  # and at most REQUEST_ID_MAX characters
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN.strip("^$"))  # fullmatch: "$" would let a trailing "\n" in
_ESCAPED = re.compile("%(25|2F)")


class InvalidRequestIdError(ValueError):
    """A request id that could misroute an answer (a `/`, a space, too long, ...)."""


def request_id_problem(request_id: str) -> str | None:
    """None for a valid request id, else what is wrong with it, in plain words."""
    if len(request_id) <= REQUEST_ID_MAX and _REQUEST_ID.fullmatch(request_id):
        return None
    shown = request_id if len(request_id) <= 40 else f"{request_id[:40]}... ({len(request_id)} characters)"
    return f"the request id {shown!r} is not valid: use {REQUEST_ID_RULE}"


def check_request_id(request_id: str) -> str:
    problem = request_id_problem(request_id)
    if problem:
        raise InvalidRequestIdError(problem)
    return request_id


def escape(part: str) -> str:
    """One key component: `%` → %25 and `/` → %2F, so `/` only ever separates components."""
    return part.replace("%", "%25").replace("/", "%2F")


def unescape(part: str) -> str:
    return _ESCAPED.sub(lambda m: "%" if m[1] == "25" else "/", part)


def series_key(request_id: str, series: str) -> str:
    """Key of `predictions` (and of the validator's table): all units of a series meet in one partition."""
    return f"{escape(request_id)}/{escape(series)}"


def unit_key(request_id: str, series: str, index: int) -> str:
    """Key of `datasets`: one per unit of work; `Topic.partition_of` places it by the trailing index."""
    return f"{series_key(request_id, series)}/{index}"


def split_series_key(key: str) -> tuple[str, str]:
    """`series_key`'s inverse: (request id, series)."""
    rid, sep, series = key.partition("/")
    if not sep or "/" in series:
        raise ValueError(f"not a series key: {key!r}")
    return unescape(rid), unescape(series)


# A live series' re-selection (forecasting.live.reselect) runs the normal selection under a request id of its
# own, so the validator decides it afresh (the standing request's own id has its series decided already):
# `<request id>~reselect-<observation count>`. "~" is never in a user's request id, so no request can be
# mistaken for one; such ids have no index entry (readers of best-models, progress and failures skip them or
# map them to their standing request with `reselection_of`).
RESELECTION_MARK = "~reselect-"


def reselection_id(request_id: str, triggered_at: int, salt: int = 0) -> str:
    """The request id of the re-selection of a standing request's series triggered at `triggered_at`; `salt`
    (`.<salt>` after the count) only makes its key hash differ (the live service picks the one whose answer
    lands on its standing request's partition: live/shards.py)."""
    return f"{request_id}{RESELECTION_MARK}{triggered_at}" + (f".{salt}" if salt else "")


def reselection_of(request_id: str) -> tuple[str, int] | None:
    """(standing request id, observation count) of a re-selection's id; None for any other id."""
    parent, mark, tail = request_id.rpartition(RESELECTION_MARK)
    at, dot, salt = tail.partition(".")
    if not mark or not parent or not at.isdigit() or (dot and not salt.isdigit()):
        return None
    return parent, int(at)
