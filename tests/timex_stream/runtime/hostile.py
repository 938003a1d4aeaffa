"""Units that misbehave, run by the real pool in its worker processes (so module-level, importable by name)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def peak_rss_mb(_: object = None) -> float:
    """This worker's peak resident memory so far, as the kernel counts it."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def echo(value: object) -> tuple[object, int]:
    return value, os.getpid()


def hog_memory(chunk_mb: int) -> int:
    """Touch `chunk_mb` MiB at a time (resident, not just reserved) until the allocator refuses."""
    hoard = []
    while True:
        hoard.append(bytearray(b"\x01" * (chunk_mb * 1024 * 1024)))


def allocate_at_once(gib: int) -> int:
    return len(bytearray(gib * 1024**3))


def spin(_: object) -> None:
    while True:
        pass


def sleep_then_echo(args: tuple[float, object]) -> object:
    seconds, value = args
    time.sleep(seconds)
    return value


def die(marker: str) -> None:
    """Always takes its worker down (after noting the attempt in `marker`)."""
    with open(marker, "a") as f:
        f.write(f"{os.getpid()}\n")
    os._exit(3)


def spawn_child_and_spin(marker: str) -> None:
    """Starts a long child (as cmdstan would), notes its pid in `marker`, then never returns."""
    child = subprocess.Popen(["sleep", "600"])
    Path(marker).write_text(str(child.pid))
    while True:
        pass


def die_once_then_succeed(marker: str) -> str:
    """Dies the first time (leaving `marker` behind), succeeds the second: a unit run again after a crash."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os._exit(3)
    return f"second run in {os.getpid()}"


def count_and_sleep(args: tuple[str, float]) -> int:
    """Appends a line to a file per execution, so a test can count how many times a unit really ran."""
    marker, seconds = args
    with open(marker, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return os.getpid()


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def child_allocates(gib: int) -> tuple[int, str]:
    """Starts a child (as prophet starts cmdstan) that allocates `gib` GiB: (its exit code, its stderr)."""
    done = subprocess.run([sys.executable, "-c", f"bytearray({gib} * 1024**3)"], capture_output=True, text=True)
    return done.returncode, done.stderr[-300:]


def exit_the_process(_: object) -> None:
    sys.exit(5)
