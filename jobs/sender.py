"""Sending lanes: the RQ job that sends a broadcast, throttled, batched and crash-safe.

A lane claims small chunks of due recipients in the database (so a killed worker leaves at most
a couple of seconds of sends uncertain), books a send slot per message in the shared Redis limiter,
keeps hundreds of requests in flight, and records outcomes in groups. With a pause between
batches it sends one batch and re-enqueues itself for after the pause; without one it pipelines
batch after batch for a time slice, then re-enqueues itself so work moves between workers.

In a worker the lane runs on a thread of its own (jobs.offload), so the worker keeps taking
status, reply and card jobs while it sends. A watcher task hears pause, cancel and shutdown
within POLL_SECONDS: nothing new starts after that (requests in flight finish). Every background
task of a lane is watched: one that fails is logged and stops the lane, which the maintenance
loop then revives from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import LockError
from redis.lock import Lock
from sqlalchemy.exc import OperationalError

from broadcasts import sending, service
from broadcasts.callback import encode
from broadcasts.db import transaction
from broadcasts.enums import BroadcastStatus
from broadcasts.models import Broadcast, utcnow
from jobs import events, offload
from jobs.limiter import RateLimiter
from jobs.queues import SEND, job_id, queue
from jobs.runtime import Runtime, current
from jobs.telemetry import SendMeter, meter_for
from jobs.whatsapp import spec_for, target_for
from kapso.client import ApiTarget, WhatsAppClient
from kapso.errors import ErrorAction, WhatsAppError
from kapso.templates import TemplateSpec

log = logging.getLogger(__name__)

OFFLOAD = "lanes"  # the jobs.offload name lanes run on inside a worker
SLICE_SECONDS = 45.0
LOCK_TTL_SECONDS = 5  # renewed every POLL_SECONDS; a killed worker's lane is free again soon
POLL_SECONDS = 0.5
PROGRESS_SECONDS = 2.0  # the sending side tells the card how far it got this often
RECORD_EVERY_SECONDS = 0.1
RECORD_RETRY_SECONDS = 60.0  # a database that refuses outcomes this long fails the lane
CHUNK_SECONDS = 2.0  # a claim holds about this much sending at the configured rate
MAX_IN_FLIGHT = 500
# Book slots a quarter of a second at a time (one Redis call per group, not per message) and
# keep 2 % under the cap: requests leave on time but reach the API with a few ms of jitter.
SLOTS_PER_CALL_SECONDS = 0.25
RATE_SAFETY = 0.98
LATE_SECONDS = 0.01  # a send this late for its slot books a new one
THROTTLE_PUSH = 0.25  # on 130429 the number waits this long and slows down (see jobs.limiter)
# The same unknown code this many times in a row pauses the broadcast with Meta's message.
UNKNOWN_PAUSE_AFTER = 3
DEFAULT_FAILURE_THRESHOLD = 0.5
MIN_BREAKER_SAMPLE = 20
# Why a lane's loop ended without being stopped (the soft ends: work simply moves on).
SLICE_OVER = "slice"
BATCH_DONE = "batch done"
CRASHED = "background task failed"
MORE, LATER, DONE = "more", "later", "done"  # what may come after nothing was due

shutting_down = threading.Event()  # set by the worker on SIGTERM
T = TypeVar("T")


def lane_lock_key(broadcast_id: str, lane: int) -> str:
    return f"bb:lane:{broadcast_id}:{lane}"


def enqueue_lanes(runtime: Runtime, broadcast_id: str, lanes: int, *, delay: float = 0.0) -> None:
    """Queue the broadcast's lanes (deterministic ids: a duplicate only finds nothing to do)."""
    q = queue(SEND, runtime.redis)
    for lane in range(lanes):
        jid = job_id("send", broadcast_id, lane)
        kwargs: dict[str, Any] = {
            "job_id": jid,
            "job_timeout": int(SLICE_SECONDS * 4) + 60,
            "result_ttl": 60,
            "failure_ttl": 86400,
        }
        if delay > 0:
            q.enqueue_in(timedelta(seconds=delay), run_lane, broadcast_id, lane, **kwargs)
        else:
            q.enqueue(run_lane, broadcast_id, lane, **kwargs)


def lanes_for(pause_seconds: float, lanes_setting: int) -> int:
    """Batches separated by a pause go one after another; without a pause, lanes run in parallel."""
    return 1 if pause_seconds > 0 else max(1, lanes_setting)


def run_lane(broadcast_id: str, lane: int = 0) -> str:
    """RQ entry point: send for one time slice (or one batch), then hand over.

    Inside a worker the lane moves to a thread of its own and the job returns at once; without
    an installed offload (tests, one-off calls) it runs here to the end."""
    runtime = current()
    # thread_local=False: the lock is taken here and renewed and released on the lane's threads.
    lock = runtime.redis.lock(
        lane_lock_key(broadcast_id, lane), timeout=LOCK_TTL_SECONDS, thread_local=False
    )
    if not lock.acquire(blocking=False):
        return "lane already running"
    lanes = offload.get(OFFLOAD)
    if lanes is None:
        return _run_locked(runtime, broadcast_id, lane, lock)
    lanes.submit(lane_lock_key(broadcast_id, lane), _run_locked, runtime, broadcast_id, lane, lock)
    return "lane started"


def _run_locked(runtime: Runtime, broadcast_id: str, lane: int, lock: Lock) -> str:
    runner = Lane(runtime, broadcast_id, lane, lock)
    try:
        return asyncio.run(runner.run())
    except Exception:
        log.exception("lane %s/%s failed; the maintenance loop will revive it", broadcast_id, lane)
        return "failed"
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("lane lock of %s/%s expired before release", broadcast_id, lane)
        if runner.follow_up is not None:
            lanes, delay = runner.follow_up
            enqueue_lanes(runtime, broadcast_id, lanes, delay=delay)


@dataclass(frozen=True)
class Plan:
    name: str
    phone_number_id: str
    target: ApiTarget
    spec: TemplateSpec
    batch_size: int
    pause_seconds: float
    rate: float
    failure_threshold: float
    lanes: int


class Lane:
    def __init__(self, runtime: Runtime, broadcast_id: str, lane: int, lock: Lock) -> None:
        self.runtime = runtime
        self.broadcast_id = broadcast_id
        self.lane = lane
        self.lock = lock
        self._stop_reason: str | None = None
        self.end_reason: str | None = None
        self.broadcast_error: WhatsAppError | None = None
        self.auto_pause: str | None = None
        self.throttled = 0
        self.missed_slots = 0
        self.outcomes: asyncio.Queue[sending.Outcome] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()
        self.halted = asyncio.Event()
        self._flush_waiters: dict[int, asyncio.Future[None]] = {}
        # (lanes, delay) to queue once this run has let go of its lock: queued earlier, the
        # next run could find the lock still held and give up.
        self.follow_up: tuple[int, float] | None = None

    @property
    def stop_reason(self) -> str | None:
        """Why nothing new may start (pause, cancel, shutdown, a stop error, the breaker)."""
        return self._stop_reason

    @stop_reason.setter
    def stop_reason(self, reason: str | None) -> None:
        self._stop_reason = reason
        if reason is not None:
            self.halted.set()  # sends waiting for their slot give it up now

    # -- database helpers ---------------------------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(session, *args)` in a transaction on a thread, retrying a busy database."""

        def call() -> T:
            for attempt in range(10):
                try:
                    with transaction(self.runtime.sessions) as session:
                        return fn(session, *args)
                except OperationalError:
                    if attempt == 9:
                        raise
                    time.sleep(0.05 * (attempt + 1))
            raise AssertionError("unreachable")

        return await asyncio.to_thread(call)

    def _plan(self, session: Any) -> Plan | None:
        broadcast = session.get(Broadcast, self.broadcast_id)
        if broadcast is None or broadcast.status != BroadcastStatus.SENDING:
            return None
        batch_size, pause, rate = service.effective_pacing(broadcast)
        settings = self.runtime.settings
        return Plan(
            name=broadcast.name,
            phone_number_id=broadcast.config.phone_number_id,
            target=target_for(broadcast.config),
            spec=spec_for(broadcast.template),
            batch_size=batch_size,
            pause_seconds=pause,
            rate=rate,
            failure_threshold=broadcast.failure_threshold or DEFAULT_FAILURE_THRESHOLD,
            lanes=lanes_for(pause, settings.send_lanes),
        )

    def _status(self, session: Any) -> str | None:
        broadcast = session.get(Broadcast, self.broadcast_id)
        return None if broadcast is None else str(broadcast.status)

    def _claim(self, session: Any, limit: int) -> list[sending.Claimed]:
        claimed = sending.claim(session, self.broadcast_id, limit)
        skipped = sending.skip_opted_out(session, claimed)
        sending.heartbeat(session, self.broadcast_id)
        return [c for c in claimed if c.id not in skipped]

    def _waiting(self, session: Any) -> tuple[datetime | None, int]:
        """When the next pending recipient is due, and how many other lanes hold in flight."""
        sending.heartbeat(session, self.broadcast_id)
        return sending.next_due(session, self.broadcast_id), sending.in_flight(
            session, self.broadcast_id
        )

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
            "lane %s/%s: %s failed; stopping the lane (the maintenance loop revives it)",
            self.broadcast_id,
            self.lane,
            task.get_name(),
            exc_info=exc,
        )
        self.end_reason = CRASHED
        self.stop_reason = self.stop_reason or f"{task.get_name()} failed"

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake as soon as the lane is stopped."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.halted.wait(), seconds)

    # -- the lane -----------------------------------------------------------------------

    async def run(self) -> str:
        try:
            plan = await self.db(self._plan)
        except Exception as exc:  # e.g. the credential variable is missing
            await self._stop_broadcast(str(exc), fail=False)
            return f"stopped: {exc}"
        if plan is None:
            return "not sending"
        redis = AsyncRedis.from_url(self.runtime.settings.redis_url)
        try:
            async with WhatsAppClient(max_in_flight=MAX_IN_FLIGHT) as client:
                limiter = RateLimiter(redis)
                self.rebooker = Rebooker(limiter, plan.phone_number_id, plan.rate * RATE_SAFETY)
                return await self._send_all(plan, client, limiter)
        finally:
            await redis.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose

    async def _send_all(self, plan: Plan, client: WhatsAppClient, limiter: RateLimiter) -> str:
        meter = SendMeter(meter_for(self.runtime.settings.redis_url), plan.phone_number_id, limiter)
        recorder = self.recorder = self._spawn(self._record_loop(meter), "recorder")
        watcher = self._spawn(self._watch(), "watcher")
        deadline = time.monotonic() + SLICE_SECONDS
        chunk = max(10, int(plan.rate * CHUNK_SECONDS))
        batch_left, stats, batch_tasks = plan.batch_size, sending.BatchStats(), []
        exhausted = False
        try:
            while self.stop_reason is None:
                if time.monotonic() > deadline:
                    self.end_reason = SLICE_OVER
                    break
                claimed = await self.db(self._claim, min(chunk, batch_left))
                if not claimed:
                    after = await self._more_to_come(deadline)
                    if after == MORE:
                        continue
                    exhausted = after == DONE
                    self.end_reason = None if exhausted else SLICE_OVER
                    break
                batch_tasks += await self._dispatch(plan, client, limiter, claimed, stats)
                batch_left -= len(claimed)
                if batch_left <= 0:
                    done_batch, batch_tasks = batch_tasks, []
                    if plan.pause_seconds > 0:
                        await asyncio.gather(*done_batch)
                        self._breaker(plan, stats)
                        self.end_reason = BATCH_DONE
                        break
                    follow_up = self._spawn(self._after_batch(plan, done_batch, stats), "breaker")
                    self.tasks.add(follow_up)
                    follow_up.add_done_callback(self.tasks.discard)
                    batch_left, stats = plan.batch_size, sending.BatchStats()
        finally:
            if self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)
            if batch_tasks and plan.pause_seconds == 0:
                self._breaker(plan, stats)
            if not recorder.done():
                await self.outcomes.put(_FLUSH)
                await asyncio.gather(recorder, return_exceptions=True)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        return await self._hand_over(plan, exhausted)

    async def _more_to_come(self, deadline: float) -> str:
        """Nothing is due now. Wait here for retries and for sends still in flight (ours or other
        lanes', which may come back as retries) while that fits in the slice: MORE when there
        may be work now, LATER when another run should go on, DONE when nothing is left now."""
        if self.tasks:  # our own sends: their outcomes may be retries
            await asyncio.wait(set(self.tasks), timeout=POLL_SECONDS)
            await self._flush()
            return MORE
        await self._flush()
        due, in_flight = await self.db(self._waiting)
        if due is None and in_flight == 0:
            return DONE
        wait = POLL_SECONDS / 2 if due is None else (due - utcnow()).total_seconds()
        if in_flight:
            wait = min(wait, POLL_SECONDS / 2)
        if time.monotonic() + wait > deadline:
            return LATER if in_flight else DONE  # DONE: _finish schedules the due retry
        await self._sleep(max(wait, 0.05))
        return MORE

    async def _flush(self) -> None:
        """Wait until every outcome put so far is written (or the recorder is gone)."""
        marker = sending.Outcome(-2, "flush")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush_waiters[id(marker)] = waiter
        await self.outcomes.put(marker)
        await asyncio.wait({waiter, self.recorder}, return_when=asyncio.FIRST_COMPLETED)
        self._flush_waiters.pop(id(marker), None)

    async def _dispatch(
        self,
        plan: Plan,
        client: WhatsAppClient,
        limiter: RateLimiter,
        claimed: list[sending.Claimed],
        stats: sending.BatchStats,
    ) -> list[asyncio.Task[None]]:
        """Book send slots in groups and start one task per recipient, each at its slot."""
        rate = plan.rate * RATE_SAFETY
        group = max(1, int(rate * SLOTS_PER_CALL_SECONDS))
        started: list[asyncio.Task[None]] = []
        index = 0
        while index < len(claimed) and self.stop_reason is None:
            wanted = min(group, len(claimed) - index)
            reservation = await limiter.acquire(plan.phone_number_id, rate, wanted)
            for offset in reservation.offsets():
                at = reservation.issued_at + offset
                send = self._send(plan, client, limiter, claimed[index], stats, at)
                task = asyncio.create_task(send)
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                started.append(task)
                index += 1
        for rest in claimed[index:]:  # stopped: these were never attempted
            await self.outcomes.put(sending.Outcome(rest.id, "release", counts_as_attempt=False))
        return started

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
            self.stop_reason = self.stop_reason or "circuit breaker"

    async def _send(
        self,
        plan: Plan,
        client: WhatsAppClient,
        limiter: RateLimiter,
        recipient: sending.Claimed,
        stats: sending.BatchStats,
        at: float,
    ) -> None:
        try:
            await self._wait_for_slot(plan, limiter, at)
            if self.stop_reason is not None:
                outcome = sending.Outcome(recipient.id, "release", counts_as_attempt=False)
            else:
                outcome = await self._attempt(plan, client, limiter, recipient)
        except Exception:  # never leave a claimed recipient without an outcome
            log.exception(
                "send to recipient %s failed unexpectedly; it will be retried", recipient.id
            )
            outcome = sending.Outcome(
                recipient.id,
                "retry",
                title="internal error",
                counts_as_attempt=False,
                retry_at=utcnow() + timedelta(seconds=5),
            )
        stats.add(outcome)
        await self.outcomes.put(outcome)

    async def _wait_for_slot(self, plan: Plan, limiter: RateLimiter, at: float) -> None:
        """Sleep until the booked slot (or until the lane stops); a slot missed by a busy event
        loop is booked again, since sending late would bunch with later slots and exceed the
        number's rate."""
        loop = asyncio.get_running_loop()
        while True:
            delay = at - loop.time()
            if delay > 0:
                await self._sleep(delay)
                delay = at - loop.time()
            if self.stop_reason is not None or delay >= -LATE_SECONDS:
                return
            self.missed_slots += 1
            at = await self.rebooker.slot()

    async def _attempt(
        self, plan: Plan, client: WhatsAppClient, limiter: RateLimiter, r: sending.Claimed
    ) -> sending.Outcome:
        try:
            result = await client.send_template(
                plan.target,
                to=r.phone,
                template=plan.spec,
                params=r.params,
                callback_data=encode(self.broadcast_id, r.id),
            )
        except WhatsAppError as exc:
            return await self._on_error(plan, limiter, r, exc)
        return sending.Outcome(
            r.id,
            "sent",
            wamid=result.wamid,
            wa_id=result.wa_id,
            message_status=result.message_status,
        )

    async def _on_error(
        self, plan: Plan, limiter: RateLimiter, r: sending.Claimed, exc: WhatsAppError
    ) -> sending.Outcome:
        """Do what the error table says (kapso.errors); nothing here decides on its own."""
        c = exc.classification
        failed = sending.Outcome(
            r.id, "failed", code=exc.code, title=exc.title, detail=exc.details, opt_out=c.opt_out
        )
        release = sending.Outcome(r.id, "release", counts_as_attempt=False)
        unknown_run = 0
        if c.action is ErrorAction.UNKNOWN:  # known codes in between do not break the run
            last, n = getattr(self, "unknown_streak", (None, 0))
            unknown_run = n + 1 if last == exc.code else 1
            self.unknown_streak = (exc.code, unknown_run)
        if unknown_run >= UNKNOWN_PAUSE_AFTER and self.broadcast_error is None:
            exc = WhatsAppError(
                code=exc.code,
                title=exc.title,
                details=exc.details,
                http_status=exc.http_status,
                config_name=exc.config_name,
                hint=f"Paused after {unknown_run} sends in a row got this code, which the bot "
                "does not know: look it up in Meta's error codes, then resume.",
            )
        if c.stops_broadcast or unknown_run >= UNKNOWN_PAUSE_AFTER:
            if self.broadcast_error is None:
                self.broadcast_error = exc
            self.stop_reason = self.stop_reason or "broadcast error"
            return release
        if c.action is ErrorAction.FAIL_RECIPIENT:
            return failed
        if c.action is ErrorAction.SKIP_RECIPIENT:
            reason = f"{c.summary} (WhatsApp error {exc.kapso_code or exc.code})"
            return sending.Outcome(r.id, "skip", code=exc.code, title=reason, opt_out=c.opt_out)
        throttled = exc.code == 130429 or exc.http_status == 429
        if throttled:
            self.throttled += 1
            await limiter.slow_down(
                plan.phone_number_id, min(c.delay_seconds or 1.0, THROTTLE_PUSH)
            )
            return sending.Outcome(
                r.id, "retry", code=exc.code, title=exc.title, counts_as_attempt=False
            )
        if r.attempts >= sending.MAX_ATTEMPTS:
            return failed
        backoff = sending.backoff(r.attempts)
        if c.action is ErrorAction.RETRY_RECIPIENT:
            backoff = min(3600.0, 4.0**r.attempts)
        # The table's delay is a floor: a 24 h marketing limit is never retried sooner.
        delay = max(c.delay_seconds or 0.0, backoff)
        return sending.Outcome(
            r.id,
            "retry",
            code=exc.code,
            title=exc.title,
            detail=exc.details,
            retry_at=utcnow() + timedelta(seconds=delay),
        )

    async def _record_loop(self, meter: SendMeter) -> None:
        """Write outcomes in groups (one transaction per ~100 ms) until the flush marker.

        A write the database refuses is retried (no new sends start meanwhile); outcomes are
        never dropped while the lane lives."""
        done = False
        while not done:
            group = [await self.outcomes.get()]
            deadline = time.monotonic() + RECORD_EVERY_SECONDS
            while len(group) < 1000:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    group.append(await asyncio.wait_for(self.outcomes.get(), timeout))
                except TimeoutError:
                    break
            done = any(o is _FLUSH for o in group)
            real = [o for o in group if o.recipient_id >= 0]
            if real:
                await self._write(real)
                meter.record(real)  # in memory; /metrics reads it from Redis
            for marker in group:
                waiter = self._flush_waiters.pop(id(marker), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    async def _write(self, outcomes: list[sending.Outcome]) -> None:
        give_up = time.monotonic() + RECORD_RETRY_SECONDS
        while True:
            try:
                await self.db(sending.record, outcomes)
                return
            except Exception:
                if time.monotonic() > give_up:
                    raise
                log.exception(
                    "lane %s/%s could not record %d outcomes; retrying",
                    self.broadcast_id,
                    self.lane,
                    len(outcomes),
                )
                self.stop_reason = self.stop_reason or "recording failed"
                await asyncio.sleep(1.0)

    async def _watch(self) -> None:
        """Notice pause/cancel/shutdown within POLL_SECONDS, keep the lane lock alive and tell
        the card how far sending got every PROGRESS_SECONDS (webhooks or not)."""
        last_progress = time.monotonic()
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if shutting_down.is_set():
                self.stop_reason = self.stop_reason or "worker shutting down"
            status = await self.db(self._status)
            if status != BroadcastStatus.SENDING:
                self.stop_reason = self.stop_reason or f"broadcast {status}"
            try:
                await asyncio.to_thread(self.lock.reacquire)
            except LockError:
                log.warning("lane %s/%s lost its lock; stopping", self.broadcast_id, self.lane)
                self.stop_reason = self.stop_reason or "lane lock lost"
            if time.monotonic() - last_progress >= PROGRESS_SECONDS:
                last_progress = time.monotonic()
                await asyncio.to_thread(
                    events.publish, self.runtime.redis, self.broadcast_id, "progress"
                )

    async def _hand_over(self, plan: Plan, exhausted: bool) -> str:
        """After the slice: stop the broadcast, complete it, or queue what comes next."""
        log.info(
            "lane %s/%s stops (%s): %d answered 130429, %d slots missed and booked again",
            self.broadcast_id,
            self.lane,
            self.stop_reason or self.end_reason or "nothing left",
            self.throttled,
            self.missed_slots,
        )
        if self.broadcast_error is not None:
            exc = self.broadcast_error
            await self._stop_broadcast(str(exc), fail=exc.action is ErrorAction.FAIL_BROADCAST)
            return f"stopped: {exc}"
        if self.auto_pause:
            await self._stop_broadcast(self.auto_pause, fail=False)
            return "auto-paused"
        if self.end_reason == CRASHED:
            return "crashed"  # the heartbeat goes stale and the maintenance loop revives it
        status = await self.db(self._status)
        if status != BroadcastStatus.SENDING:
            return f"broadcast {status}"
        if self.end_reason == BATCH_DONE:
            when = utcnow() + timedelta(seconds=plan.pause_seconds)
            await self.db(lambda s: sending.heartbeat(s, self.broadcast_id, next_batch_at=when))
            self.follow_up = (1, plan.pause_seconds)
            events.publish(self.runtime.redis, self.broadcast_id, "progress")
            return BATCH_DONE
        if not exhausted:  # time slice over or worker shutting down: continue elsewhere
            self.follow_up = (plan.lanes, 0.0)
            return self.stop_reason or self.end_reason or "slice over"
        return await self._finish()

    async def _finish(self) -> str:
        """Nothing left to claim now: complete, or come back when deferred retries are due."""

        def finish(session: Any) -> tuple[str, datetime | None]:
            due = sending.next_due(session, self.broadcast_id)
            if due is not None:
                sending.heartbeat(session, self.broadcast_id, next_batch_at=due)
                return "retries pending", due
            if sending.in_flight(session, self.broadcast_id):
                return "others in flight", None
            broadcast = session.get(Broadcast, self.broadcast_id)
            if broadcast is None or broadcast.status != BroadcastStatus.SENDING:
                return "not sending", None
            service.complete_broadcast(session, broadcast)
            return "completed", None

        result, due = await self.db(finish)
        if result == "completed":
            events.publish(self.runtime.redis, self.broadcast_id, "completed")
        elif due is not None:
            self.follow_up = (1, max(0.0, (due - utcnow()).total_seconds()))
        elif result == "others in flight":  # they may come back as retries: look again soon
            self.follow_up = (1, POLL_SECONDS)
        return result

    async def _stop_broadcast(self, reason: str, *, fail: bool) -> None:
        def stop(session: Any) -> str | None:
            broadcast = session.get(Broadcast, self.broadcast_id)
            if broadcast is None:
                return None
            return service.stop_for_error(session, broadcast, reason, fail=fail)

        kind = await self.db(stop)
        if kind:
            events.publish(self.runtime.redis, self.broadcast_id, kind, reason=reason, auto=True)


_FLUSH = sending.Outcome(-1, "flush")


class Rebooker:
    """Books new slots for sends that missed theirs, in groups (one Redis call for many)."""

    def __init__(self, limiter: RateLimiter, phone_number_id: str, rate: float) -> None:
        self.limiter = limiter
        self.phone_number_id = phone_number_id
        self.rate = rate
        self.waiting: list[asyncio.Future[float]] = []
        self.task: asyncio.Task[None] | None = None

    async def slot(self) -> float:
        """The loop time of a freshly booked slot."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._book())
        return await future

    async def _book(self) -> None:
        while self.waiting:
            group, self.waiting = self.waiting, []
            try:
                reservation = await self.limiter.acquire(
                    self.phone_number_id, self.rate, len(group)
                )
            except Exception as exc:
                for future in group:
                    future.set_exception(exc)
                continue
            offsets = reservation.offsets()
            for future, offset in zip(group, offsets, strict=False):
                future.set_result(reservation.issued_at + offset)
            self.waiting = group[len(offsets) :] + self.waiting
