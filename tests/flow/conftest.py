"""Data and configs for the end-to-end tests: small synthetic monthly series with known structure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.plugins.frames import make_config, synthetic_frame


@pytest.fixture
def frame_() -> pd.DataFrame:
    return synthetic_frame()


@pytest.fixture
def serve_csv(csv_server: tuple[str, Path]) -> Callable[[str, pd.DataFrame], str]:
    base, root = csv_server

    def serve(name: str, frame: pd.DataFrame) -> str:
        frame.to_csv(root / name, index=False)
        return f"{base}/{name}"

    return serve


@pytest.fixture
def config_for() -> Callable[..., dict]:
    return make_config
