"""The worker: `broadcast-bot worker` runs a process per role, so sending never starves the rest.

- `send` takes the send queue; lanes run off the RQ loop (jobs.offload), all on one event loop
  (jobs.lane_loop), so one process sends several broadcasts at once, each at its number's rate.
- `events` takes webhooks, Slack card/notes, agent deliveries (each agent on threads of its own,
  so a slow agent delays only itself) and runs the maintenance loop.
- `bulk` takes the imports queue: CSV imports, reports and template syncs, which can keep a
  process busy for many seconds.

Each role is an RQ SimpleWorker (jobs run in-process so HTTP and database pools live across
jobs). The supervisor restarts a role process that dies and passes SIGTERM on: lanes then hand
over within a second. `--queue` runs one process on the named queues instead (every offload
still installed), and `--burst` drains everything once in this process (tests, one-off runs).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from rq import SimpleWorker
from rq.job import Job

from jobs import agents, lane_loop, maintenance, offload, sender
from jobs.handlers import registry
from jobs.queues import AGENTS, ALL, IMPORTS, MAINTENANCE, SEND, SLACK, WEBHOOKS, queue
from jobs.runtime import Runtime, install

log = logging.getLogger(__name__)

ROLES: dict[str, tuple[str, ...]] = {
    "send": (SEND,),
    # Agent and Slack jobs are few and quick (agent deliveries only hand over): taken first, so
    # a stream of webhook bodies never holds a reply or a card edit back.
    "events": (AGENTS, SLACK, WEBHOOKS, MAINTENANCE),
    "bulk": (IMPORTS,),
}
HAND_OVER_SECONDS = 10.0  # how long a stopping process waits for its lanes to hand over
RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
PR_SET_PDEATHSIG = 1
# A worker process keeps its event loops on time (a pacer that wakes late misses its send
# slot, which is then booked again: lost capacity). Two things made them late, measured with
# 20,000 sends at 1,000/s and with 4 numbers × 200/s from two workers:
# - the collector: young collections every 700 allocations, and full ones walking the whole
#   heap every few seconds, each stalling the loop for tens of milliseconds (1,865 slots missed
#   in 20,000; 72 with the settings below and what start-up built frozen out of the collector);
# - the interpreter lock: a loop waking while a database thread runs waited up to the 5 ms switch
#   interval, several times over with several threads (~600 slots missed in 8,000; ~300 at 1 ms).
GC_THRESHOLDS = (20_000, 20, 10)
SWITCH_INTERVAL_SECONDS = 0.001


class BroadcastJob(Job):
    """A job whose function may have moved since it was queued: RQ imports a job's function by
    the dotted name stored with it, so a name the adapter registered as former runs the function
    that now lives elsewhere (jobs already in Redis survive an upgrade that moves modules)."""

    @property
    def func(self) -> Any:
        name = self.func_name
        if name is not None and not self.instance:
            moved = registry.former(name)
            if moved is not None:
                return moved
        return super().func


class BroadcastWorker(SimpleWorker):
    def request_stop(self, signum: Any, frame: Any) -> None:
        sender.shutting_down.set()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def steady_loops() -> None:
    """Set a long-running worker process up for event loops that wake on time (collector and
    switch interval, see above); call once, after start-up, in the process that will work."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


def run(
    runtime: Runtime,
    *,
    queues: tuple[str, ...] = ALL,
    burst: bool = False,
    with_maintenance: bool = True,
) -> bool:
    """One worker process on `queues` (lanes and agent deliveries offloaded to threads)."""
    registry.check_complete()  # its jobs queue adapter jobs: refuse to start without the handlers
    install(runtime)
    lanes = offload.Offload(sender.OFFLOAD)
    deliveries = offload.Offload(agents.OFFLOAD, per_key=agents.PER_AGENT_IN_FLIGHT)
    offload.install(lanes)
    offload.install(deliveries)
    shared_loop = lane_loop.LaneLoop()
    lane_loop.install(shared_loop)
    stop = threading.Event()
    if with_maintenance:
        threading.Thread(
            target=maintenance.loop, args=(runtime, stop), name="maintenance", daemon=True
        ).start()
    try:
        while True:
            worker = BroadcastWorker(
                [queue(name, runtime.redis) for name in queues],
                connection=runtime.redis,
                job_class=BroadcastJob,
            )
            result = bool(worker.work(with_scheduler=True, burst=burst, logging_level="WARNING"))
            if not burst or sender.shutting_down.is_set():
                return result
            # Burst: offloaded work may queue more (hand-overs, retries); drain until all is idle.
            lanes.drain(timeout=600)
            deliveries.drain(timeout=600)
            if not any(queue(name, runtime.redis).count for name in queues):
                return result
    finally:
        stop.set()
        for work in (lanes, deliveries):
            if not work.drain(HAND_OVER_SECONDS):
                log.warning("%s still running after %.0f s; leaving", work.name, HAND_OVER_SECONDS)
        offload.uninstall(lanes.name)
        offload.uninstall(deliveries.name)
        lane_loop.install(None)
        shared_loop.close()


def _die_with_parent() -> None:
    """In a role process: get SIGTERM when the supervisor dies, even by SIGKILL (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the roles outlive a killed supervisor
        pass


def role_command(role: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "bot.cli.main", "worker", "--role", role, *extra]


def supervise(roles: tuple[str, ...] = tuple(ROLES), extra: tuple[str, ...] = ()) -> int:
    """Run one process per role until SIGTERM/SIGINT; restart a role process that dies."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    restarts: dict[str, int] = dict.fromkeys(roles, 0)
    started: dict[str, float] = {}

    def start(role: str) -> None:
        procs[role] = subprocess.Popen(  # noqa: S603
            role_command(role, extra), env=os.environ.copy(), preexec_fn=_die_with_parent
        )
        started[role] = time.monotonic()
        log.info("worker role %s started (pid %d)", role, procs[role].pid)

    for role in roles:
        start(role)
    try:
        while not stopping.wait(0.5):
            for role, proc in list(procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                if time.monotonic() - started[role] > 60:
                    restarts[role] = 0  # it ran a while: a fresh failure, not a crash loop
                delay = RESTART_BACKOFF[min(restarts[role], len(RESTART_BACKOFF) - 1)]
                restarts[role] += 1
                log.error("worker role %s exited with %s; restarting in %.0f s", role, code, delay)
                if stopping.wait(delay):
                    break
                start(role)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + HAND_OVER_SECONDS + 20
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0
