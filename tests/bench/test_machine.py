"""bench/scale_common.py's `machine()`: every bench's JSON says how fast a core was, measured once a process."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

_BENCH = str(Path(__file__).resolve().parents[2] / "bench")
sys.path.insert(0, _BENCH)  # a bench script's module, imported as the scripts import it
try:
    scale_common = importlib.import_module("scale_common")
finally:
    sys.path.remove(_BENCH)


def test_machine_carries_a_speed_reference_measured_once() -> None:
    first = scale_common.machine()
    assert first["speed_ref_ms"] > 0 and first["cores"] >= 1
    assert scale_common.machine()["speed_ref_ms"] == first["speed_ref_ms"]  # cached: one measurement a process
    assert scale_common.speed_ref_ms.cache_info().misses == 1
