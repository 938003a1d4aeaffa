"""Child processes that must not outlive their parent (broker JVM, unit pools)."""

from __future__ import annotations

import ctypes
import signal


def die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this process when its parent exits, even on kill -9."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
