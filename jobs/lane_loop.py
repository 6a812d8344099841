"""The one event loop a worker process's sending lanes share.

Each lane used to run its own event loop on its own thread. With several broadcasts sending from
one process, those loops took turns at the interpreter lock, and a pacer that woke on time still
waited for the lock while another loop ran: its slot went by, to be booked again (lost capacity),
or its send went out late, bunched with the next (a burst over the number's rate). On one loop,
every lane's pacers share one timer queue and nothing but the lanes' own database threads
competes with them. The lane's offload thread (jobs.offload) only waits for its lane here, so the
offload's keys, hand-over and draining work as before.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

# Threads for the lanes' blocking calls (database transactions, lock renewals, events), shared
# by every lane of the process; each lane has at most a few in use at once.
BLOCKING_THREADS = 32


class LaneLoop:
    """An event loop running on a thread of its own until `close`."""

    def __init__(self, name: str = "lanes-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(
            ThreadPoolExecutor(max_workers=BLOCKING_THREADS, thread_name_prefix=f"{name}-io")
        )
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        except BaseException:
            log.exception("the lanes' event loop stopped; lanes can no longer start here")
            raise

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the shared loop; the calling thread waits for its result (or error).
        A loop that is no longer running is an error at once, never a wait forever."""
        if not self._thread.is_alive() or self.loop.is_closed():
            coro.close()
            raise RuntimeError("the lanes' event loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self, timeout: float = 10.0) -> None:
        async def shut_down() -> None:
            await self.loop.shutdown_default_executor()
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(shut_down(), self.loop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


_installed: LaneLoop | None = None


def install(loop: LaneLoop | None) -> None:
    """Make the lanes of this process run on `loop` (the worker does); None: a loop each."""
    global _installed
    _installed = loop


def get() -> LaneLoop | None:
    return _installed
