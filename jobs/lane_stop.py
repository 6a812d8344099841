"""Why a lane stops, and the switch every part of a lane watches.

A stop reason means nothing new may start (requests in flight finish); an end reason says why
the lane's loop ended without being stopped, so the work simply moves on.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum


class StopReason(StrEnum):
    SHUTTING_DOWN = "worker shutting down"
    NOT_SENDING = "broadcast no longer sending"  # paused, cancelled, completed or failed
    LOCK_LOST = "lane lock lost"
    BROADCAST_ERROR = "broadcast error"  # e.g. template disabled, token revoked
    CIRCUIT_BREAKER = "circuit breaker"
    RECORDING_FAILED = "recording failed"
    TASK_FAILED = "background task failed"


class EndReason(StrEnum):
    SLICE_OVER = "slice"  # the time slice is over: another run goes on
    BATCH_DONE = "batch done"  # one batch sent; the next one comes after the pause
    CRASHED = "crashed"  # a background task failed (the maintenance loop revives the lane)


class Halt:
    """The lane's stop switch: the first reason given wins, and sleepers wake at once."""

    def __init__(self) -> None:
        self.reason: StopReason | None = None
        self._sleepers: set[asyncio.Future[None]] = set()

    @property
    def stopped(self) -> bool:
        return self.reason is not None

    def stop(self, reason: StopReason) -> None:
        if self.reason is None:
            self.reason = reason
            for sleeper in self._sleepers:
                _wake(sleeper)

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake as soon as the lane is stopped. Cheap enough to call per message (a
        future and a timer; asyncio.wait_for would add a task each time)."""
        if seconds <= 0 or self.stopped:
            return
        sleeper: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = asyncio.get_running_loop().call_later(seconds, _wake, sleeper)
        self._sleepers.add(sleeper)
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleepers.discard(sleeper)


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)
