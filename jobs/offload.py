"""Long-running work moved off the RQ worker loop onto threads, so one worker keeps taking jobs.

A sending lane lives for a time slice and an agent delivery may wait for a slow agent; run inline,
either would hold the worker and freeze statuses, replies and card updates behind it. The RQ job
hands its work to an `Offload` and returns at once. Work is keyed: at most `per_key` items of one
key run at a time (one lane per lane lock, a few deliveries per agent) and the rest wait their
turn in order, so one slow key never delays another. Nothing here is durable: the database
says what is left, and the maintenance loop re-queues what a dead process was holding.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Offload:
    def __init__(self, name: str, *, per_key: int = 1) -> None:
        self.name = name
        self.per_key = per_key
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running: dict[str, int] = defaultdict(int)
        self._waiting: dict[str, deque[tuple[Callable[..., Any], tuple[Any, ...]]]] = defaultdict(
            deque
        )

    def submit(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on a thread now, or after the running items of `key` finish."""
        with self._lock:
            if self._running[key] >= self.per_key:
                self._waiting[key].append((fn, args))
                return
            self._running[key] += 1
        self._start(key, fn, args)

    def drain(self, timeout: float) -> bool:
        """Wait until nothing runs or waits; False when `timeout` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._empty(), timeout)

    def _empty(self) -> bool:
        return not any(self._running.values()) and not any(self._waiting.values())

    def _start(self, key: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        thread = threading.Thread(
            target=self._run, args=(key, fn, args), name=f"{self.name}:{key}", daemon=True
        )
        thread.start()

    def _run(self, key: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        while True:
            try:
                fn(*args)
            except Exception:  # the work logs its own failures; this is the last net
                log.exception("%s work %s failed", self.name, key)
            with self._lock:
                waiting = self._waiting.get(key)
                if waiting:
                    fn, args = waiting.popleft()
                    continue
                self._running[key] -= 1
                if self._running[key] <= 0:
                    del self._running[key]
                    self._waiting.pop(key, None)
                if self._empty():
                    self._idle.notify_all()
                return


_installed: dict[str, Offload] = {}


def install(offload: Offload) -> None:
    """Make work of this name run offloaded in this process (the worker does; tests may not)."""
    _installed[offload.name] = offload


def uninstall(name: str) -> None:
    _installed.pop(name, None)


def get(name: str) -> Offload | None:
    """The installed offload of that name, or None: the caller then runs its work inline."""
    return _installed.get(name)
