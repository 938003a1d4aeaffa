"""The parts of gateway auth without a broker: TIMEX_API_TOKENS parsing (string and file), token lookup,
the token bucket, and log redaction."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gateway.auth import TokenConfigError, TokenTable, parse_tokens
from gateway.inputs import ApiError
from gateway.ratelimit import RateLimiter, retry_after
from timex_stream.runtime.logs import REDACTED, JsonFormatter, redact_in_logs

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef:with-colon"


def test_string_form() -> None:
    assert parse_tokens(f" alice:{ALICE} , bob:{BOB}") == [("alice", ALICE), ("bob", BOB)]
    assert parse_tokens(f"alice:{ALICE}\nbob:{BOB}\n") == [("alice", ALICE), ("bob", BOB)]  # a Secret's lines


def test_file_form_skips_blanks_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# who may call the gateway\nalice:{ALICE}\n\nbob:{BOB}\nalice:{ALICE[::-1]}\n")
    assert parse_tokens(str(path)) == [("alice", ALICE), ("bob", BOB), ("alice", ALICE[::-1])]


@pytest.mark.parametrize(("spec", "message"), [
    (f"alice:{ALICE},{BOB[:20]}", "entry 2: expected user:token"),
    (f"alice:{ALICE},:{BOB}", "entry 2: expected user:token"),
    (f"alice:{ALICE},bob:", "entry 2: expected user:token"),
    (f"al ice:{ALICE}", "entry 1: the user name must be"),
    ("alice:short-token", "entry 1 (user alice): the token must be at least 16 characters"),
    (f"alice:{ALICE},bob:{ALICE}", "entry 2 (user bob): the same token as entry 1"),
    (ALICE, "neither `user:token,...` nor the path of a readable file"),
    ("/no/such/token-file", "neither `user:token,...` nor the path of a readable file"),
])
def test_malformed_specs_name_the_entry_never_the_token(spec: str, message: str) -> None:
    with pytest.raises(TokenConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        parse_tokens(spec)
    for token in (ALICE, BOB, "short-token", BOB[:20]):
        assert token not in str(exc.value)


def test_malformed_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice:{ALICE}\n# comment\nbob {ALICE[::-1]}\n")
    with pytest.raises(TokenConfigError, match="line 3: expected user:token") as exc:
        parse_tokens(str(path))
    assert ALICE[::-1] not in str(exc.value)
    path.write_text("# nobody yet\n")
    with pytest.raises(TokenConfigError, match="without any user:token line"):
        parse_tokens(str(path))


def test_token_table_finds_the_user_or_says_401() -> None:
    table = TokenTable(parse_tokens(f"alice:{ALICE},bob:{BOB}"))
    assert table.authenticate(f"Bearer {ALICE}") == "alice"
    assert table.authenticate(f"bearer  {BOB} ") == "bob"
    for header, words in [(None, "needs an API token"), ("", "needs an API token"), (f"Basic {ALICE}", "Bearer"),
                          ("Bearer ", "Bearer"), (f"Bearer {ALICE}x", "not valid"),
                          (f"Bearer {ALICE[:-1]}", "not valid")]:
        with pytest.raises(ApiError) as exc:
            table.authenticate(header)
        assert exc.value.status == 401 and exc.value.field == "Authorization" and words in exc.value.error
        assert exc.value.headers["WWW-Authenticate"].startswith("Bearer")
        assert ALICE not in exc.value.error


def test_token_bucket_allows_a_burst_then_paces() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.wait_s("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait_s("alice") == pytest.approx(0.5)
    assert limiter.wait_s("bob") == 0.0  # per user
    now[0] += 0.5
    assert limiter.wait_s("alice") == 0.0
    assert limiter.wait_s("alice") == pytest.approx(0.5)
    now[0] += 100  # a long pause refills up to the burst, not beyond
    assert [limiter.wait_s("alice") for _ in range(4)][-1] > 0
    assert RateLimiter(rate=0, burst=1).wait_s("anyone") == 0.0  # 0 turns the limit off
    assert retry_after(0.01) == "1" and retry_after(1.0) == "1" and retry_after(1.2) == "2"


def test_log_lines_never_carry_a_secret() -> None:
    redact_in_logs(ALICE, "sasl-p@ss\"word", None)
    formatter = JsonFormatter("gateway")
    record = logging.LogRecord("gateway", logging.ERROR, __file__, 1, "header was Bearer %s, password %s",
                               (ALICE, 'sasl-p@ss"word'), None)
    try:
        raise RuntimeError(f"failed with {ALICE}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    doc = json.loads(line)
    assert ALICE not in line and "sasl-p@ss" not in line
    assert doc["msg"] == f"header was Bearer {REDACTED}, password {REDACTED}"
    assert f"failed with {REDACTED}" in doc["exc"]
