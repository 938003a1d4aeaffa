"""`wait_until`: how a test waits for something (a condition polled until a deadline, never a fixed sleep).
A plugin (tests/conftest.py `pytest_plugins`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str = "the condition",
               interval: float = 0.2) -> T:
    """Call `predicate` until it returns something truthy and return that; TimeoutError after `timeout` s.
    The predicate may raise to give up early (e.g. the process it waits for has exited)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout:g} s")
        time.sleep(interval)


async def async_wait_until(predicate: Callable[[], T], timeout: float, what: str = "the condition",
                           interval: float = 0.05) -> T:
    """`wait_until` inside an event loop: the loop runs on between the polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout:g} s")
        await asyncio.sleep(interval)
