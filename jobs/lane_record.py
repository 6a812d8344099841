"""A lane's recorder: writes outcomes to the database in groups (one transaction per ~250 ms),
so a thousand sends a second cost four transactions, not a thousand. (Every 100 ms, 4 numbers
sending from two workers made 80 commits a second, and the workers' database threads then held
the interpreter lock often enough to make their pacers miss slots: worker CPU per message fell
~12 % at 250 ms. The card shows progress every 2 s, so nobody sees the difference.)"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from broadcasts.sending import Outcome
from jobs.lane_stop import Halt, StopReason

log = logging.getLogger(__name__)

RECORD_EVERY_SECONDS = 0.25
RECORD_RETRY_SECONDS = 60.0  # a database that refuses outcomes this long fails the lane
MAX_GROUP = 1000

Write = Callable[[list[Outcome]], Awaitable[None]]
Written = Callable[[list[Outcome]], None]


class Recorder:
    """Outcomes go in with `put` (or `put_many`); `run` writes them until `close`, and `flush`
    waits until everything put so far is written. A write the database refuses is retried (the
    lane stops starting new sends meanwhile); outcomes are never dropped while the lane lives."""

    def __init__(self, write: Write, written: Written, halt: Halt, name: str) -> None:
        self._write_group = write
        self._written_group = written
        self._halt = halt
        self._name = name
        self._pending: list[Outcome] = []
        self._wake = asyncio.Event()
        self._closed = False
        self._written = 0  # outcomes written so far (put order is write order)
        self._put = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def put(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        self._put += 1
        self._wake.set()

    def put_many(self, outcomes: list[Outcome]) -> None:
        self._pending.extend(outcomes)
        self._put += len(outcomes)
        self._wake.set()

    async def flush(self, task: asyncio.Task[None]) -> None:
        """Wait until every outcome put so far is written (or the recorder `task` is gone)."""
        if self._written >= self._put or task.done():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._put, waiter))
        self._wake.set()
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)

    def close(self) -> None:
        """Write what is left, then end `run`."""
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._closed and not self._waiters:
                # Gather for a moment: one transaction for every outcome of the next ~250 ms.
                await asyncio.sleep(RECORD_EVERY_SECONDS)
            self._wake.clear()
            while self._pending:
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                await self._write(group)
                self._written_group(group)
                self._written += len(group)
            self._wake_waiters()
            if self._closed and not self._pending:
                return

    def _wake_waiters(self) -> None:
        still = []
        for upto, waiter in self._waiters:
            if upto <= self._written:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((upto, waiter))
        self._waiters = still

    async def _write(self, outcomes: list[Outcome]) -> None:
        give_up = time.monotonic() + RECORD_RETRY_SECONDS
        while True:
            try:
                await self._write_group(outcomes)
                return
            except Exception:
                if time.monotonic() > give_up:
                    raise
                log.exception(
                    "%s could not record %d outcomes; retrying", self._name, len(outcomes)
                )
                self._halt.stop(StopReason.RECORDING_FAILED)
                await asyncio.sleep(1.0)
