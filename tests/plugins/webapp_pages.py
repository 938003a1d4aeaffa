"""Reading the webapp's page in a browser test. A plugin (tests/conftest.py `pytest_plugins`): the webapp UI
tests share it."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By


def texts(dash_duo: Any, selector: str) -> list[str]:
    return [e.text for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, selector)]
