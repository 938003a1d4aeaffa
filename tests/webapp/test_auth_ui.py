"""The webapp in headless Chromium against a token-protected gateway: without a configured token it asks its
user once (a wrong token is refused in plain words), then everything works, downloads included; with a
configured token (what `make up` gives it) it works straight away."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.plugins.gateways import Gateway
from tests.plugins.waiting import wait_until
from tests.plugins.webapp_pages import texts
from webapp.app import create_app

TOKEN = "carol-" + uuid.uuid4().hex
TIMEOUT = 90


@pytest.fixture(scope="module")
def guarded_gateway(launch_gateway: Callable[..., Gateway]) -> str:
    return launch_gateway("gateway-ui-auth", TIMEX_API_TOKENS=f"carol:{TOKEN}").url


def test_asks_for_the_token_once_then_works(dash_duo: Any, guarded_gateway: str) -> None:
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(create_app(guarded_gateway))
    dash_duo.wait_for_contains_text("#history", "needs an API token", timeout=20)
    assert dash_duo.find_element("#token-box").is_displayed()

    dash_duo.find_element("#token-input").send_keys(TOKEN + "-not")
    dash_duo.find_element("#token-submit").click()
    dash_duo.wait_for_contains_text("#token-message", "did not accept this token", timeout=20)
    assert dash_duo.find_element("#token-box").is_displayed()

    dash_duo.find_element("#token-input").send_keys(TOKEN)
    dash_duo.find_element("#token-submit").click()
    dash_duo.wait_for_contains_text("#token-message", "Token accepted", timeout=20)
    wait_until(lambda: not dash_duo.find_element("#token-box").is_displayed(), timeout=20, what="token box hidden")
    dash_duo.wait_for_contains_text("#history", "No requests yet", timeout=20)
    assert TOKEN not in dash_duo.driver.execute_script("return document.cookie")  # HttpOnly: not for page scripts

    dash_duo.find_element("#use-example").click()
    dash_duo.wait_for_contains_text("#staged-message", "Ready: “Monthly shop: sales and visitors”", timeout=20)
    dash_duo.find_element("#submit").click()
    dash_duo.wait_for_contains_text("#status", "Done", timeout=TIMEOUT)
    wait_until(lambda: texts(dash_duo, ".series-name") == ["sales", "visitors"],
               timeout=TIMEOUT, what="example series rendered")
    link = dash_duo.find_element(".downloads a").get_attribute("href")
    csv_text = dash_duo.driver.execute_script(f"return fetch('{link}').then(r => r.text())")
    assert csv_text.startswith("series,timestamp,kind,value") and "sales" in csv_text
    dash_duo.wait_for_contains_text("#history", "Monthly shop", timeout=20)
    assert dash_duo.get_logs() == []


def test_a_configured_token_needs_no_asking(dash_duo: Any, guarded_gateway: str) -> None:
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(create_app(guarded_gateway, TOKEN))
    wait_until(lambda: texts(dash_duo, "#history .history-row, #history p"), timeout=20, what="history rendered")
    assert "needs an API token" not in dash_duo.find_element("#history").text
    assert not dash_duo.find_element("#token-box").is_displayed()
    dash_duo.find_element("#use-example").click()
    dash_duo.wait_for_contains_text("#staged-message", "Ready: “Monthly shop: sales and visitors”", timeout=20)
