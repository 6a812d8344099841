"""The worker process: RQ's SimpleWorker on every queue, with scheduler and maintenance loop.

SimpleWorker runs jobs in-process so HTTP and database pools live across jobs (a forked work-horse
per job would rebuild them); a SIGTERM asks running lanes to hand over within a second.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from rq import SimpleWorker

from jobs import maintenance, sender
from jobs.queues import ALL, queue
from jobs.runtime import Runtime, install

log = logging.getLogger(__name__)


class BroadcastWorker(SimpleWorker):
    def request_stop(self, signum: Any, frame: Any) -> None:
        sender.shutting_down.set()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def run(
    runtime: Runtime,
    *,
    queues: tuple[str, ...] = ALL,
    burst: bool = False,
    with_maintenance: bool = True,
) -> bool:
    install(runtime)
    stop = threading.Event()
    if with_maintenance:
        threading.Thread(
            target=maintenance.loop, args=(runtime, stop), name="maintenance", daemon=True
        ).start()
    worker = BroadcastWorker(
        [queue(name, runtime.redis) for name in queues], connection=runtime.redis
    )
    try:
        return bool(worker.work(with_scheduler=True, burst=burst, logging_level="WARNING"))
    finally:
        stop.set()
