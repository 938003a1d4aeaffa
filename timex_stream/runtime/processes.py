"""Child processes that must not outlive their parent (broker JVM, unit pools)."""

from __future__ import annotations

import ctypes
import signal


def die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this process when its parent exits, even on kill -9. The parent is the
    *thread* that started it: a process started from a thread that then ends is killed at once, so start such
    processes from a thread that lives as long as they should (the fault tests restart brokers from the main one)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
