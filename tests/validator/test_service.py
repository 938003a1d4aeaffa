"""The validator service module is imported and its app built without a broker (nothing connects before
the worker starts): its agent, table and timers are where the book's effects say they are."""

from __future__ import annotations

from pathlib import Path

from schemas.topics import PREDICTIONS
from timex_stream.runtime.settings import Settings
from validator.service import build_app


def test_the_app_is_built_in_a_function_without_a_broker(tmp_path: Path) -> None:
    app = build_app(Settings(bootstrap_servers="127.0.0.1:1", data_dir=tmp_path))
    (agent,) = app.agents.values()
    assert agent.channel.get_topic_name() == PREDICTIONS.name
    assert list(app.tables) == ["series-states"]
    again = build_app(Settings(bootstrap_servers="127.0.0.1:1", data_dir=tmp_path))
    assert again is not app and list(again.tables) == ["series-states"]  # no module-level state shared
