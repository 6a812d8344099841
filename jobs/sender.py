"""Sending lanes: the RQ job that sends a broadcast, throttled, batched and crash-safe.

A lane claims small chunks of due recipients in the database (so a killed worker leaves at most
a couple of seconds of sends uncertain), books send slots in the shared Redis limiter, keeps
hundreds of requests in flight, and records outcomes in groups. With a pause between batches it
sends one batch and re-enqueues itself for after the pause; without one it pipelines batch after
batch for a time slice, then re-enqueues itself so work moves between workers.

The pieces, each readable alone: jobs.lane_plan (what to send, how many lanes),
jobs.lane_dispatch (slots and requests), jobs.lane_errors (what an error answer means),
jobs.lane_record (outcomes to the database), jobs.lane_handover (what comes after a run) and
jobs.lane_stop (why a lane stops). This module runs them.

In a worker the lane runs off the RQ loop (jobs.offload), on the event loop all the process's
lanes share (jobs.lane_loop), so the worker keeps taking status, reply and card jobs while it
sends. A watcher task hears pause, cancel and shutdown
within POLL_SECONDS: nothing new starts after that (requests in flight finish). Every background
task of a lane is watched: one that fails is logged and stops the lane, which the maintenance
loop then revives from the database.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import LockError
from redis.lock import Lock

from broadcasts import sending
from broadcasts.enums import BroadcastStatus
from broadcasts.models import utcnow
from jobs import broadcast_events, keys, lane_loop, offload
from jobs.broadcast_events import EventKind
from jobs.lane_db import in_transaction
from jobs.lane_dispatch import Dispatcher
from jobs.lane_errors import ErrorPolicy
from jobs.lane_handover import FollowUp, HandOver, RunEnd
from jobs.lane_plan import Plan, load_plan, status_of
from jobs.lane_record import Recorder
from jobs.lane_stop import EndReason, Halt, StopReason
from jobs.limiter import RateLimiter
from jobs.queues import SEND, queue
from jobs.runtime import Runtime, current
from jobs.telemetry import SendMeter, meter_for
from kapso.client import WhatsAppClient

log = logging.getLogger(__name__)

OFFLOAD = "lanes"  # the jobs.offload name lanes run on inside a worker
SLICE_SECONDS = 45.0
LOCK_TTL_SECONDS = 5  # renewed every POLL_SECONDS; a killed worker's lane is free again soon
POLL_SECONDS = 0.5
PROGRESS_SECONDS = 2.0  # the sending side tells the card how far it got this often
CHUNK_SECONDS = 2.0  # a claim holds about this much sending at the configured rate
MAX_IN_FLIGHT = 500
MIN_BREAKER_SAMPLE = 20
REDIS_CONNECTIONS = 16  # a lane's own Redis connections (limiter bookings, 130429 reports)
REDIS_WAIT_SECONDS = 10.0

shutting_down = threading.Event()  # set by the worker on SIGTERM


class Next(StrEnum):
    """What may come after a claim found nothing due."""

    MORE = "more"  # there may be work now: claim again
    LATER = "later"  # others hold sends in flight beyond the slice: another run goes on
    DONE = "done"  # nothing left now (a due retry is scheduled by the hand-over)


def enqueue_lanes(runtime: Runtime, broadcast_id: str, lanes: int, *, delay: float = 0.0) -> None:
    """Queue the broadcast's lanes (deterministic ids: a duplicate only finds nothing to do)."""
    q = queue(SEND, runtime.redis)
    for lane in range(lanes):
        kwargs: dict[str, Any] = {
            "job_id": keys.send_job(broadcast_id, lane),
            "job_timeout": int(SLICE_SECONDS * 4) + 60,
            "result_ttl": 60,
            "failure_ttl": 86400,
        }
        if delay > 0:
            q.enqueue_in(timedelta(seconds=delay), run_lane, broadcast_id, lane, **kwargs)
        else:
            q.enqueue(run_lane, broadcast_id, lane, **kwargs)


def run_lane(broadcast_id: str, lane: int = 0) -> str:
    """RQ entry point: send for one time slice (or one batch), then hand over.

    Inside a worker the lane moves to a thread of its own and the job returns at once; without
    an installed offload (tests, one-off calls) it runs here to the end."""
    runtime = current()
    # thread_local=False: the lock is taken here and renewed and released on the lane's threads.
    lock = runtime.redis.lock(
        keys.lane_lock(broadcast_id, lane), timeout=LOCK_TTL_SECONDS, thread_local=False
    )
    if not lock.acquire(blocking=False):
        return "lane already running"
    lanes = offload.get(OFFLOAD)
    if lanes is None:
        return _run_locked(runtime, broadcast_id, lane, lock)
    lanes.submit(keys.lane_lock(broadcast_id, lane), _run_locked, runtime, broadcast_id, lane, lock)
    return "lane started"


def _run_locked(runtime: Runtime, broadcast_id: str, lane: int, lock: Lock) -> str:
    runner = Lane(runtime, broadcast_id, lane, lock)
    shared = lane_loop.get()
    try:
        return shared.run(runner.run()) if shared else asyncio.run(runner.run())
    except Exception:
        log.exception("lane %s/%s failed; the maintenance loop will revive it", broadcast_id, lane)
        return "failed"
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("lane lock of %s/%s expired before release", broadcast_id, lane)
        follow_up: FollowUp | None = runner.handover.follow_up
        if follow_up is not None:
            enqueue_lanes(runtime, broadcast_id, follow_up.lanes, delay=follow_up.delay)


class Lane:
    """One run of one lane: claim, dispatch and record until the slice or the batch is over,
    or the lane is stopped; then hand over."""

    def __init__(self, runtime: Runtime, broadcast_id: str, lane: int, lock: Lock) -> None:
        self.runtime = runtime
        self.broadcast_id = broadcast_id
        self.lane = lane
        self.lock = lock
        self.halt = Halt()
        self.end: EndReason | None = None
        self.auto_pause: str | None = None
        self.handover = HandOver(runtime, broadcast_id)
        self.breakers: list[asyncio.Task[None]] = []  # each judges one batch once it is sent

    @property
    def name(self) -> str:
        return f"lane {self.broadcast_id}/{self.lane}"

    async def db(self, fn: Any, *args: Any) -> Any:
        return await in_transaction(self.runtime.sessions, fn, *args)

    # -- background tasks ---------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A lane task whose failure is logged and stops the lane: never a silent death."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._check_task)
        return task

    def _check_task(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        log.error(
            "%s: %s failed; stopping the lane (the maintenance loop revives it)",
            self.name,
            task.get_name(),
            exc_info=exc,
        )
        self.end = EndReason.CRASHED
        self.halt.stop(StopReason.TASK_FAILED)

    # -- the lane -----------------------------------------------------------------------

    async def run(self) -> str:
        try:
            plan = await self.db(load_plan, self.broadcast_id, self.runtime.settings)
        except Exception as exc:  # e.g. the credential variable is missing
            await self.handover.stop_broadcast(str(exc), fail=False)
            return f"stopped: {exc}"
        if plan is None:
            return "not sending"
        # Callers wait for a free connection rather than fail (a burst of answers at once).
        pool: BlockingConnectionPool[Any] = BlockingConnectionPool.from_url(
            self.runtime.settings.redis_url,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_WAIT_SECONDS,
        )
        redis: AsyncRedis[bytes] = AsyncRedis(connection_pool=pool)
        try:
            async with WhatsAppClient(max_in_flight=MAX_IN_FLIGHT) as client:
                return await self._send_all(plan, client, RateLimiter(redis))
        finally:
            await redis.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose
            await pool.disconnect()

    async def _send_all(self, plan: Plan, client: WhatsAppClient, limiter: RateLimiter) -> str:
        meter = SendMeter(meter_for(self.runtime.settings.redis_url), plan.phone_number_id, limiter)
        # The meter counts in memory; /metrics reads it from Redis.
        recorder = Recorder(self._record, meter.record, self.halt, self.name)
        recording = self._spawn(recorder.run(), "recorder")
        errors = ErrorPolicy(limiter, plan.phone_number_id, self.halt)
        dispatcher = Dispatcher(plan, client, limiter, self.halt, recorder, errors)
        watcher = self._spawn(self._watch(), "watcher")
        deadline = time.monotonic() + SLICE_SECONDS
        chunk = max(10, int(plan.rate * CHUNK_SECONDS))
        batch_left, stats = plan.batch_size, sending.BatchStats()
        batch: list[asyncio.Task[None]] = []
        exhausted = False
        try:
            while not self.halt.stopped:
                if time.monotonic() > deadline:
                    self.end = EndReason.SLICE_OVER
                    break
                claimed = await self.db(self._claim, min(chunk, batch_left))
                if not claimed:
                    after = await self._more_to_come(dispatcher, recorder, recording, deadline)
                    if after is Next.MORE:
                        continue
                    exhausted = after is Next.DONE
                    self.end = None if exhausted else EndReason.SLICE_OVER
                    break
                batch += await dispatcher.dispatch(claimed, stats)
                batch_left -= len(claimed)
                if batch_left <= 0:
                    if plan.pause_seconds > 0:
                        await asyncio.gather(*batch)
                        self._breaker(plan, stats)
                        self.end = EndReason.BATCH_DONE
                        break
                    self.breakers.append(
                        self._spawn(self._after_batch(plan, batch, stats), "breaker")
                    )
                    batch_left, stats, batch = plan.batch_size, sending.BatchStats(), []
        finally:
            while dispatcher.tasks:  # pacers start sends: wait until every one is done
                await asyncio.gather(*list(dispatcher.tasks), return_exceptions=True)
            await asyncio.gather(*self.breakers, return_exceptions=True)
            if batch and plan.pause_seconds == 0:
                self._breaker(plan, stats)
            recorder.close()
            await asyncio.gather(recording, return_exceptions=True)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        log.info(
            "%s stops (%s): %d answered 130429, %d slots missed and booked again",
            self.name,
            self.halt.reason or self.end or "nothing left",
            errors.throttled,
            dispatcher.missed_slots,
        )
        run = RunEnd(self.halt.reason, self.end, exhausted, errors.broadcast_error, self.auto_pause)
        return await self.handover.after(plan, run)

    def _claim(self, session: Any, limit: int) -> list[sending.Claimed]:
        claimed = sending.claim(session, self.broadcast_id, limit)
        skipped = sending.skip_opted_out(session, claimed)
        sending.heartbeat(session, self.broadcast_id)
        return [c for c in claimed if c.id not in skipped]

    async def _record(self, outcomes: list[sending.Outcome]) -> None:
        await self.db(sending.record, outcomes)

    async def _more_to_come(
        self,
        dispatcher: Dispatcher,
        recorder: Recorder,
        recording: asyncio.Task[None],
        deadline: float,
    ) -> Next:
        """Nothing is due now. Wait here for retries and for sends still in flight (ours or other
        lanes', which may come back as retries) while that fits in the slice."""
        if dispatcher.tasks:  # our own sends: their outcomes may be retries
            await asyncio.wait(set(dispatcher.tasks), timeout=POLL_SECONDS)
            await recorder.flush(recording)
            return Next.MORE
        await recorder.flush(recording)
        due, in_flight = await self.db(_waiting, self.broadcast_id)
        if due is None and in_flight == 0:
            return Next.DONE
        wait = POLL_SECONDS / 2 if due is None else (due - utcnow()).total_seconds()
        if in_flight:
            wait = min(wait, POLL_SECONDS / 2)
        if time.monotonic() + wait > deadline:
            return Next.LATER if in_flight else Next.DONE
        await self.halt.sleep(max(wait, 0.05))
        return Next.MORE

    async def _after_batch(
        self, plan: Plan, tasks: list[asyncio.Task[None]], stats: sending.BatchStats
    ) -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        self._breaker(plan, stats)

    def _breaker(self, plan: Plan, stats: sending.BatchStats) -> None:
        if stats.attempted >= min(MIN_BREAKER_SAMPLE, plan.batch_size) and (
            stats.failure_share >= plan.failure_threshold
        ):
            top = ", ".join(f"{code} ×{n}" for code, n in stats.codes.most_common(3))
            self.auto_pause = (
                f"Auto-paused: {stats.failure_share:.0%} of the last batch failed "
                f"({stats.failed} of {stats.attempted}; top reasons: {top}). "
                "Check the numbers and the template, then resume."
            )
            self.halt.stop(StopReason.CIRCUIT_BREAKER)

    async def _watch(self) -> None:
        """Notice pause/cancel/shutdown within POLL_SECONDS, keep the lane lock alive and tell
        the card how far sending got every PROGRESS_SECONDS (webhooks or not)."""
        last_progress = time.monotonic()
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if shutting_down.is_set():
                self.halt.stop(StopReason.SHUTTING_DOWN)
            status = await self.db(status_of, self.broadcast_id)
            if status != BroadcastStatus.SENDING:
                self.halt.stop(StopReason.NOT_SENDING)
            try:
                await asyncio.to_thread(self.lock.reacquire)
            except LockError:
                log.warning("%s lost its lock; stopping", self.name)
                self.halt.stop(StopReason.LOCK_LOST)
            if time.monotonic() - last_progress >= PROGRESS_SECONDS:
                last_progress = time.monotonic()
                await asyncio.to_thread(
                    broadcast_events.publish,
                    self.runtime.redis,
                    self.broadcast_id,
                    EventKind.PROGRESS,
                )


def _waiting(session: Any, broadcast_id: str) -> tuple[datetime | None, int]:
    """When the next pending recipient is due, and how many other lanes hold in flight."""
    sending.heartbeat(session, broadcast_id)
    return sending.next_due(session, broadcast_id), sending.in_flight(session, broadcast_id)
