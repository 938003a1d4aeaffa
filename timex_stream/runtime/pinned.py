"""The guard of code that patches a third-party library's private parts: it runs only on the exact version it
was written for (faust_delivery.py for faust-streaming, silent_broker.py for aiokafka)."""

from __future__ import annotations


def require_version(dist: str, installed: str, written_for: str, module: str, what_to_check: str) -> None:
    """Raise unless `installed` (the version of `dist`) is `written_for`; the message says what to check."""
    if installed != written_for:
        raise RuntimeError(f"{dist} {installed} is installed, but timex_stream/runtime/{module} was written for "
                           f"{written_for}: {what_to_check}")
