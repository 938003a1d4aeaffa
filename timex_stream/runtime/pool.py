"""A bounded pool of worker processes for the services that fit models (the predictor's units, the live
service's fits and refits): one unit at a time per worker, each under a memory cap (RLIMIT_AS) and a time
limit (TIMEX_UNIT_MEMORY_MB, TIMEX_UNIT_TIMEOUT_S), with an asyncio API (`await pool.run(key, fn, arg)`).

Why not concurrent.futures.ProcessPoolExecutor: one worker that dies breaks the whole executor and fails
every unit in flight, and a unit stuck in a model's loop cannot be stopped. Here a unit over a limit gets
a `UnitLimitError` naming the limit and only its own worker is replaced; a unit in flight on a worker that
died is run again, and one that took its worker down `CRASH_LIMIT` times is failed for good.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from forecasting.workers import init_worker
from timex_stream.runtime.processes import die_with_parent

log = logging.getLogger("timex.pool")
R = TypeVar("R")
# The rule: a unit that has killed its worker twice is failed, never retried forever.
CRASH_LIMIT = 2


@dataclass(frozen=True)
class Limits:
    memory_mb: int  # address space of each worker process (and of each process it starts)
    timeout_s: float  # wall-clock time of one unit
    nice: int = 0  # added to the worker's niceness (TIMEX_UNIT_NICE): the service's own work goes first


class UnitLimitError(Exception):
    """A unit was stopped by a limit; the message says which, in plain words."""

    def __init__(self, limit: str, message: str, peak_rss_mb: float | None = None) -> None:
        super().__init__(message)
        self.limit = limit  # "memory", "time" or "crashes"
        self.peak_rss_mb = peak_rss_mb  # the worker's peak resident memory, when it could tell


def forkserver_context(preload: list[str]) -> BaseContext:
    """Workers fork from a clean server that preloaded the model libraries, not from the event loop.
    Put `timex_stream.runtime.orphan_guard` first in `preload`: the fork server then dies with the service."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    return ctx


def start_model_worker() -> None:
    """Pool initializer of a service that fits models: die with the fork server (and so with the service),
    then the core's set-up (one BLAS thread, the model libraries imported once)."""
    die_with_parent()
    init_worker()


def _serve(conn: Connection, memory_mb: int, initializer: Callable[[], None] | None, nice: int = 0) -> None:
    """Worker main loop: receive (fn, arg), answer ("ok", result, peak) or ("raised", exc, peak)."""
    # Own process group: a unit's children (cmdstan) are killed with the worker on a time-out.
    os.setpgid(0, 0)
    if nice:
        os.nice(nice)  # its children (cmdstan) inherit it
    if initializer is not None:
        initializer()
    # RLIMIT_AS, not RLIMIT_DATA: the address space bounds the resident memory (RSS <= VmSize), shared
    # libraries included, so no allocation, however made, takes this process over the cap; children (cmdstan)
    # inherit it. Measured: a worker that ran every model uses ~0.7 GiB of address space, ~0.25 GiB resident.
    # Hard limit too, so a unit cannot lift it.
    cap = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    while True:
        try:
            fn, arg = conn.recv()
        except (EOFError, OSError):
            return  # the pool closed its end
        try:
            reply: tuple[str, Any] = ("ok", fn(arg))
        except MemoryError:
            reply = ("memory", None)
        except Exception as exc:  # noqa: BLE001 - what a unit raises goes back to the caller
            reply = ("raised", exc)
        except BaseException as exc:  # noqa: BLE001 - SystemExit must not be raised again in the service
            reply = ("raised", RuntimeError(f"the unit raised {type(exc).__name__}: {exc}"))
        try:
            conn.send((*reply, _peak_rss_mb()))
        except MemoryError:  # the result itself did not fit
            conn.send(("memory", None, _peak_rss_mb()))
        except Exception as exc:  # noqa: BLE001 - e.g. an exception that does not pickle
            conn.send(("raised", RuntimeError(f"{type(exc).__name__}: {exc}"), _peak_rss_mb()))
        if reply[0] == "memory":
            return  # a heap that hit the cap may be fragmented: leave, the pool starts a fresh worker


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class _Worker:
    def __init__(self, ctx: BaseContext, limits: Limits, initializer: Callable[[], None] | None) -> None:
        self.conn, child = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(  # type: ignore[attr-defined]
            target=_serve, args=(child, limits.memory_mb, initializer, limits.nice), daemon=True,
            name="timex-unit-worker")
        self.process.start()
        child.close()  # the worker's end lives in the worker only, so its death reads as EOF here

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        """SIGKILL the worker and whatever it started (its process group), then reap it."""
        pid = self.process.pid
        if pid is not None:
            for kill in (os.killpg, os.kill):  # the group exists once the worker ran setpgid
                try:
                    kill(pid, signal.SIGKILL)
                    break
                except (ProcessLookupError, PermissionError):
                    continue
        self.process.join(timeout=5)
        self.conn.close()

    async def call(self, fn: Callable[[Any], Any], arg: Any, timeout: float) -> tuple[str, Any, float] | None:
        """The worker's reply, None if it died first; TimeoutError past `timeout`."""
        try:
            self.conn.send((fn, arg))
        except OSError:
            return None
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def wake(outcome: BaseException | None = None) -> None:
            if not woken.done():
                woken.set_exception(outcome) if outcome else woken.set_result(None)

        # Woken by the reply, by the worker's exit (its sentinel) or by the deadline.
        fds = (self.conn.fileno(), self.process.sentinel)
        for fd in fds:
            loop.add_reader(fd, wake)
        deadline = loop.call_later(timeout, wake, TimeoutError())
        try:
            await woken
        finally:
            deadline.cancel()
            for fd in fds:
                loop.remove_reader(fd)
        try:
            # The worker writes its whole reply at once, so this read does not wait on the unit.
            return self.conn.recv() if self.conn.poll() else None
        except (EOFError, OSError):
            return None


class UnitPool:
    """`size` worker processes, each running one unit at a time."""

    def __init__(self, size: int, limits: Limits, ctx: BaseContext,
                 initializer: Callable[[], None] | None = None) -> None:
        self.size, self.limits, self._ctx, self._initializer = size, limits, ctx, initializer
        self._slots: asyncio.Queue[_Worker | None] | None = None
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._workers: set[_Worker] = set()
        self.replaced = 0  # workers replaced after a limit or a crash (for metrics and tests)
        self._closed = False

    async def run(self, key: str, fn: Callable[[Any], R], arg: Any) -> R:
        """fn(arg) in a worker. Raises UnitLimitError (memory, time, crashes) or what fn raised.
        Calls with a key already running share that run (a unit sent again while it still runs)."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self._run(key, fn, arg))
            self._running[key] = task
            task.add_done_callback(lambda _: self._running.pop(key, None))
        return await asyncio.shield(task)  # one caller giving up does not stop the others' run

    async def _run(self, key: str, fn: Callable[[Any], R], arg: Any) -> R:
        crashes = 0
        while True:
            await self._unless_closed()
            worker = await self._acquire()
            if self._closed:  # closed while this unit waited for a worker
                worker.kill()
                await self._unless_closed()
            try:
                reply = await worker.call(fn, arg, self.limits.timeout_s)
            except TimeoutError:
                self._replace(worker)
                raise UnitLimitError("time",
                    f"unit exceeded the time limit of {self.limits.timeout_s:g} s (TIMEX_UNIT_TIMEOUT_S); "
                    "its worker was replaced") from None
            except BaseException:  # cancelled (shutdown): the worker may be mid-unit, never reuse it
                self._replace(worker)
                raise
            if reply is None:
                await self._unless_closed()  # killed by close(), not by the unit
                crashes += 1
                self._replace(worker)  # reaps it, so its exit code is known
                code = worker.process.exitcode
                log.warning("unit %s: its worker process died (exit code %s), %d of %d", key, code, crashes,
                            CRASH_LIMIT)
                if crashes >= CRASH_LIMIT:
                    raise UnitLimitError("crashes",
                        f"unit killed its worker process {crashes} times (last exit code {code}); "
                        "it is not run again")
                continue  # maybe not this unit's fault (a neighbour's OOM kill, a kill -9): run it again
            outcome, value, peak_mb = reply
            if outcome == "memory":
                self._replace(worker)
                raise UnitLimitError("memory",
                    f"unit exceeded the memory limit of {self.limits.memory_mb} MB (TIMEX_UNIT_MEMORY_MB); "
                    f"its worker was replaced (peak resident memory {peak_mb:.0f} MB)", peak_mb)
            self._release(worker)
            if outcome == "raised":
                raise value
            return value

    async def start(self) -> None:
        """Start every worker now, so the first units do not wait for the fork server and the workers."""
        for _ in range(self.size):
            self._release(await self._acquire())

    def _queue(self) -> asyncio.Queue[_Worker | None]:
        if self._slots is None:  # made on first use, inside the running loop
            self._slots = asyncio.Queue()
            for _ in range(self.size):
                self._slots.put_nowait(None)
        return self._slots

    async def _acquire(self) -> _Worker:
        worker = await self._queue().get()
        if worker is not None and worker.alive():
            return worker
        if worker is not None:  # died while idle (killed from outside): not a unit's doing
            worker.kill()
            self._workers.discard(worker)
        if self._ctx.get_start_method() == "forkserver":
            # Launched from this thread, not from the helper thread below: the fork server dies with the
            # thread that started it (PR_SET_PDEATHSIG follows the parent thread, not the process).
            multiprocessing.forkserver.ensure_running()
        try:
            # In a thread: the first worker waits for the fork server to import the model libraries.
            worker = await asyncio.to_thread(_Worker, self._ctx, self.limits, self._initializer)
        except BaseException:
            self._queue().put_nowait(None)
            raise
        self._workers.add(worker)
        return worker

    def _release(self, worker: _Worker) -> None:
        self._queue().put_nowait(worker)

    def _replace(self, worker: _Worker) -> None:
        self._workers.discard(worker)
        self.replaced += 1
        worker.kill()  # SIGKILL is not refused, so reaping it takes no time
        self._queue().put_nowait(None)  # a fresh worker starts when the next unit needs it

    async def _unless_closed(self) -> None:
        """After close(), a unit gets no answer at all: its caller waits until it is stopped itself (the
        service's shutdown cancels its agents), so nothing is published for the unit and its record, never
        committed, runs again after the restart. An error here would fail a unit that did nothing wrong."""
        if self._closed:
            await asyncio.Event().wait()

    def close(self) -> None:
        """Kill every worker; units in flight stay unanswered (see _unless_closed)."""
        self._closed = True
        for worker in list(self._workers):
            worker.kill()
        self._workers.clear()
