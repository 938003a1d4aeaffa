"""Fixtures of the forecasting-core tests (the builders are in tests/plugins/core_series.py)."""

from __future__ import annotations

import pytest

from forecasting.config import TimexConfig
from tests.plugins.core_series import make_config


@pytest.fixture
def config() -> TimexConfig:
    return make_config()
