"""The event loop a worker's lanes share: each lane's thread waits for its lane, every lane runs
on the one loop, errors come back to the lane's thread, and blocking calls get threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from jobs.lane_loop import LaneLoop


def test_lanes_from_several_threads_run_at_once_on_the_one_loop() -> None:
    shared = LaneLoop()
    loops: list[asyncio.AbstractEventLoop] = []
    both_started = asyncio.Event()  # made outside: used only on the shared loop
    started = 0

    async def lane() -> str:
        nonlocal started
        loops.append(asyncio.get_running_loop())
        started += 1
        if started == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 10)  # neither finishes before both run
        return await asyncio.to_thread(lambda: threading.current_thread().name)

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(shared.run(lane()))) for _ in range(2)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
    finally:
        shared.close()
    assert len(results) == 2 and all(name.startswith("lanes-loop-io") for name in results)
    assert loops == [shared.loop, shared.loop]


def test_a_lane_that_fails_raises_on_its_own_thread() -> None:
    shared = LaneLoop()

    async def broken() -> None:
        raise RuntimeError("lane broke")

    try:
        with pytest.raises(RuntimeError, match="lane broke"):
            shared.run(broken())

        async def fine() -> int:
            return 7

        assert shared.run(fine()) == 7  # the loop goes on for the other lanes
    finally:
        shared.close()
    assert shared.loop.is_closed()


def test_a_lane_started_after_the_loop_stopped_fails_at_once() -> None:
    # The loop's thread ended (stopped, not closed): waiting on it would never return.
    shared = LaneLoop()
    shared.loop.call_soon_threadsafe(shared.loop.stop)
    shared._thread.join(5)

    async def lane() -> None:
        return None

    with pytest.raises(RuntimeError, match="not running"):
        shared.run(lane())  # an error its caller logs, not a wait for good
    shared.loop.close()
