"""The unit pool (timex_stream.runtime.pool) with real misbehaving units (hostile.py beside this file) in real
worker processes: each limit is named in the unit's error, only the offending worker is replaced, units on other
workers are untouched, a crashing unit is run again once and then failed, identical units run once."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.plugins.waiting import async_wait_until
from tests.timex_stream.runtime import hostile
from timex_stream.runtime.pool import CRASH_LIMIT, UnitLimitError, UnitPool

MiB = 1024 * 1024


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone for our purpose (killed, not reaped yet by its parent).
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize("hog", [(hostile.hog_memory, 32), (hostile.allocate_at_once, 64)],
                         ids=["step-by-step", "at-once"])
def test_unit_over_the_memory_cap_fails_naming_it_and_its_worker_stays_under_the_cap(
        make_pool: Callable[..., UnitPool], hog: tuple[Callable, int]) -> None:
    pool = make_pool(size=1, memory_mb=1024)

    async def scenario() -> tuple[int, UnitLimitError, int]:
        _, before = await pool.run("warm", hostile.echo, None)
        with pytest.raises(UnitLimitError) as stopped:
            await pool.run("hog", *hog)
        _, after = await pool.run("next", hostile.echo, None)
        return before, stopped.value, after

    before, exc, after = asyncio.run(scenario())
    assert exc.limit == "memory"
    assert "memory limit of 1024 MB (TIMEX_UNIT_MEMORY_MB)" in str(exc) and "worker was replaced" in str(exc)
    # The kernel's count of the worker's peak resident memory, taken by the worker after the refusal.
    assert exc.peak_rss_mb is not None and 0 < exc.peak_rss_mb < 1024
    assert after != before and _gone(before)  # the pool answered the next unit on a fresh worker


def test_workers_run_nicer_than_their_service_by_the_limit(make_pool: Callable[..., UnitPool]) -> None:
    # TIMEX_UNIT_NICE: the fits take the CPU the service's per-record work leaves (os.nice(0) reads the niceness)
    service = os.nice(0)
    plain, nicer = make_pool(size=1), make_pool(size=1, nice=7)
    assert asyncio.run(plain.run("plain", os.nice, 0)) == service
    assert asyncio.run(nicer.run("nicer", os.nice, 0)) == min(19, service + 7)


def test_processes_a_unit_starts_inherit_the_memory_cap(make_pool: Callable[..., UnitPool]) -> None:
    pool = make_pool(size=1, memory_mb=1024)
    code, stderr = asyncio.run(pool.run("child", hostile.child_allocates, 2))
    assert code != 0 and "MemoryError" in stderr  # 2 GiB refused to the child of a 1 GiB worker


def test_unit_in_an_endless_loop_is_stopped_at_the_time_limit_with_what_it_started(
        make_pool: Callable[..., UnitPool], tmp_path: Path) -> None:
    pool = make_pool(size=1, timeout_s=3)
    child_pid = tmp_path / "child"

    async def scenario() -> tuple[int, UnitLimitError, float, int]:
        _, before = await pool.run("warm", hostile.echo, None)
        started = time.monotonic()
        with pytest.raises(UnitLimitError) as stopped:
            await pool.run("spin", hostile.spawn_child_and_spin, str(child_pid))
        took = time.monotonic() - started
        _, after = await pool.run("next", hostile.echo, None)
        return before, stopped.value, took, after

    before, exc, took, after = asyncio.run(scenario())
    assert exc.limit == "time"
    assert str(exc) == "unit exceeded the time limit of 3 s (TIMEX_UNIT_TIMEOUT_S); its worker was replaced"
    assert 3 <= took < 3 + 20
    assert _gone(before) and after != before
    assert _gone(int(child_pid.read_text()))  # the unit's own child (cmdstan, say) went with its worker


def test_unit_whose_worker_died_once_is_run_again_and_succeeds(make_pool: Callable[..., UnitPool],
                                                                tmp_path: Path) -> None:
    pool = make_pool(size=1)
    marker = tmp_path / "first-run"
    result = asyncio.run(pool.run("flaky", hostile.die_once_then_succeed, str(marker)))
    assert result.startswith("second run in ")
    first_pid = int(marker.read_text())
    assert result != f"second run in {first_pid}" and pool.replaced == 1


def test_unit_that_always_kills_its_worker_is_failed_after_two_crashes(make_pool: Callable[..., UnitPool],
                                                                       tmp_path: Path) -> None:
    pool = make_pool(size=1)
    attempts = tmp_path / "attempts"

    async def scenario() -> tuple[UnitLimitError, object]:
        with pytest.raises(UnitLimitError) as stopped:
            await pool.run("killer", hostile.die, str(attempts))
        return stopped.value, await pool.run("next", hostile.echo, "still here")

    exc, after = asyncio.run(scenario())
    assert CRASH_LIMIT == 2 and len(_lines(attempts)) == 2  # run exactly twice, in two workers
    assert len(set(_lines(attempts))) == 2
    assert exc.limit == "crashes"
    assert str(exc) == "unit killed its worker process 2 times (last exit code 3); it is not run again"
    assert after[0] == "still here"


def test_a_worker_dying_leaves_the_units_on_other_workers_alone(make_pool: Callable[..., UnitPool],
                                                                tmp_path: Path) -> None:
    pool = make_pool(size=2)
    slow, queued, attempts = tmp_path / "slow", tmp_path / "queued", tmp_path / "attempts"

    async def scenario() -> list[object]:
        await pool.start()
        return await asyncio.gather(
            pool.run("slow", hostile.count_and_sleep, (str(slow), 4.0)),
            pool.run("killer", hostile.die, str(attempts)),
            pool.run("queued", hostile.count_and_sleep, (str(queued), 0.0)),
            return_exceptions=True)

    slow_pid, killer, queued_pid = asyncio.run(scenario())
    assert isinstance(killer, UnitLimitError) and killer.limit == "crashes"
    # The slow unit ran once, undisturbed, while its neighbour's worker died twice; the queued one ran too.
    assert _lines(slow) == [str(slow_pid)] and _lines(queued) == [str(queued_pid)]
    assert len(_lines(attempts)) == 2


def test_identical_units_in_flight_run_once(make_pool: Callable[..., UnitPool], tmp_path: Path) -> None:
    pool = make_pool(size=2)
    runs, other = tmp_path / "runs", tmp_path / "other"

    async def scenario() -> list[int]:
        await pool.start()
        first = asyncio.ensure_future(pool.run("unit-7", hostile.count_and_sleep, (str(runs), 2.0)))
        # Sent again while the first still runs (the validator's stall repair).
        await async_wait_until(lambda: _lines(runs), 30, what="the first unit running")
        again = pool.run("unit-7", hostile.count_and_sleep, (str(runs), 2.0))
        different = pool.run("unit-8", hostile.count_and_sleep, (str(other), 0.0))
        return list(await asyncio.gather(first, again, different))

    first, again, different = asyncio.run(scenario())
    assert first == again and _lines(runs) == [str(first)]
    assert _lines(other) == [str(different)]


def test_what_a_unit_raises_reaches_the_caller_and_the_worker_goes_on(make_pool: Callable[..., UnitPool]) -> None:
    pool = make_pool(size=1)

    async def scenario() -> tuple[int, int]:
        _, before = await pool.run("a", hostile.echo, None)
        with pytest.raises(ValueError, match="bad unit"):
            await pool.run("b", hostile.raise_value_error, "bad unit")
        with pytest.raises(RuntimeError, match="the unit raised SystemExit: 5"):  # not a SystemExit here
            await pool.run("b2", hostile.exit_the_process, None)
        _, after = await pool.run("c", hostile.echo, None)
        return before, after

    before, after = asyncio.run(scenario())
    assert before == after and pool.replaced == 0  # an exception is an answer, not a reason to replace


def test_close_kills_the_workers_and_answers_nothing_for_units_in_flight(make_pool: Callable[..., UnitPool],
                                                                         tmp_path: Path) -> None:
    """On shutdown a unit in flight must not be answered, not even with an error: its record is not committed
    and runs again after the restart."""
    pool = make_pool(size=1)
    runs = tmp_path / "runs"

    async def scenario() -> tuple[bool, int]:
        _, pid = await pool.run("warm", hostile.echo, None)
        unit = asyncio.ensure_future(pool.run("long", hostile.count_and_sleep, (str(runs), 60.0)))
        await async_wait_until(lambda: _lines(runs), 30, what="the long unit running")
        pool.close()
        done, _ = await asyncio.wait([unit], timeout=3)
        unit.cancel()  # what the service's shutdown does to its agents
        return bool(done), pid

    answered, pid = asyncio.run(scenario())
    assert not answered and _gone(pid) and len(_lines(runs)) == 1
