"""A request's `verbose` sets the level of this project's log lines while it is handled (logs.handling)."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from timex_stream.runtime import logs


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    own = {name: logging.getLogger(name).level for name in logs.OWN_LOGGERS}
    path = tmp_path / "service.log"
    logs.configure_logging("predictor", "INFO", path)
    yield path
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])
    for name, level in own.items():
        logging.getLogger(name).setLevel(level)


def _lines(path: Path) -> list[tuple[str, str, str | None]]:
    for h in logging.getLogger().handlers:
        h.flush()
    return [(d["level"], d["msg"], d.get("request_id")) for d in map(json.loads, path.read_text().splitlines())]


def _handle(rid: str, config: dict | None) -> None:
    logs.handling(rid, None if config is None else json.dumps(config))
    own, library = logging.getLogger("predictor.service"), logging.getLogger("somelibrary")
    own.debug("debug %s", rid)
    own.info("info %s", rid)
    own.warning("warning %s", rid)
    library.warning("library %s", rid)


def test_a_requests_verbose_sets_its_own_lines_level(log_file: Path) -> None:
    for rid, config in (("plain", None), ("loud", {"verbose": "DEBUG"}), ("quiet", {"verbose": "error"}),
                        ("bad", {"verbose": 3})):
        contextvars.copy_context().run(_handle, rid, config)  # as each agent's task has its own context
    assert _lines(log_file) == [
        ("INFO", "info plain", "plain"), ("WARNING", "warning plain", "plain"), ("WARNING", "library plain", "plain"),
        ("DEBUG", "debug loud", "loud"), ("INFO", "info loud", "loud"), ("WARNING", "warning loud", "loud"),
        ("WARNING", "library loud", "loud"),
        ("WARNING", "library quiet", "quiet"),  # a library's line (a broker's trouble) whatever the request asks
        ("INFO", "info bad", "bad"), ("WARNING", "warning bad", "bad"), ("WARNING", "library bad", "bad"),
    ]


def test_logged_tells_whether_a_line_would_be_written(log_file: Path) -> None:
    def check(config: dict | None) -> tuple[bool, bool]:
        logs.handling("r", None if config is None else json.dumps(config))
        return logs.logged(logging.DEBUG), logs.logged(logging.INFO)

    assert contextvars.copy_context().run(check, None) == (False, True)
    assert contextvars.copy_context().run(check, {"verbose": "debug"}) == (True, True)
    assert contextvars.copy_context().run(check, {"verbose": "WARNING"}) == (False, False)


def test_an_unreadable_config_has_no_level() -> None:
    """Whatever reaches the ingestion: a config that is not JSON, not an object or nested too deeply is answered
    by its own failure, and its lines keep the service's level (no exception here)."""
    for config_json in ("{", "[1]", "[" * 100_000 + "]" * 100_000, '{"verbose": "loud"}', None, ""):
        assert logs.verbose_level(config_json) is None
    assert logs.verbose_level('{"verbose": "Debug"}') == logging.DEBUG
