"""A lane's dispatcher: books send slots in the shared limiter and starts each send at its slot.

Slots are booked a quarter of a second at a time (one Redis call for many messages) up to a
second ahead, so claiming the next chunk never leaves the number idle. One pacer task per
booking walks its slots and starts a request at each; only requests are tasks of their own.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from broadcasts import sending
from broadcasts.callback import encode
from broadcasts.models import utcnow
from broadcasts.sending import BatchStats, Claimed, Outcome, OutcomeKind
from jobs.lane_errors import ErrorPolicy
from jobs.lane_plan import Plan
from jobs.lane_record import Recorder
from jobs.lane_stop import Halt, StopReason
from jobs.limiter import RateLimiter
from kapso.client import WhatsAppClient
from kapso.errors import WhatsAppError

log = logging.getLogger(__name__)

# Book slots a quarter of a second at a time (one Redis call per group, not per message) and
# keep 2 % under the cap: requests leave on time but reach the API with a few ms of jitter.
SLOTS_PER_CALL_SECONDS = 0.25
RATE_SAFETY = 0.98
LATE_SECONDS = 0.01  # a send this late for its slot books a new one


class Dispatcher:
    def __init__(
        self,
        plan: Plan,
        client: WhatsAppClient,
        limiter: RateLimiter,
        halt: Halt,
        recorder: Recorder,
        errors: ErrorPolicy,
    ) -> None:
        self.plan = plan
        self.client = client
        self.limiter = limiter
        self.halt = halt
        self.recorder = recorder
        self.errors = errors
        self.rate = plan.rate * RATE_SAFETY
        self.rebooker = Rebooker(limiter, plan.phone_number_id, self.rate)
        self.tasks: set[asyncio.Task[None]] = set()  # pacers and requests still running
        self.missed_slots = 0

    def _track(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def dispatch(self, claimed: list[Claimed], stats: BatchStats) -> list[asyncio.Task[None]]:
        """Book slots for `claimed` and start a pacer per booking; returns the pacers, each done
        when all of its sends have their outcome. What the lane stopped before is released."""
        group = max(1, int(self.rate * SLOTS_PER_CALL_SECONDS))
        pacers: list[asyncio.Task[None]] = []
        index = 0
        try:
            while index < len(claimed) and not self.halt.stopped:
                wanted = min(group, len(claimed) - index)
                reservation = await self.limiter.acquire(
                    self.plan.phone_number_id, self.rate, wanted
                )
                slots = [reservation.issued_at + offset for offset in reservation.offsets()]
                mine = claimed[index : index + len(slots)]
                pacers.append(self._track(asyncio.create_task(self._pace(mine, slots, stats))))
                index += len(mine)
        except Exception:  # e.g. Redis unreachable: what has no slot goes back, unsent, now
            log.exception(
                "booking send slots for %s failed; stopping the lane", self.plan.broadcast_id
            )
            self.halt.stop(StopReason.TASK_FAILED)
        self._release(claimed[index:])
        return pacers

    def _release(self, never_attempted: list[Claimed]) -> None:
        if never_attempted:
            self.recorder.put_many(
                [
                    Outcome(r.id, OutcomeKind.RELEASE, counts_as_attempt=False)
                    for r in never_attempted
                ]
            )

    async def _pace(self, claimed: list[Claimed], slots: list[float], stats: BatchStats) -> None:
        """Start each send at its slot. A slot missed by a busy event loop is booked again:
        sending late would bunch with later slots and exceed the number's rate."""
        loop = asyncio.get_running_loop()
        sends: list[asyncio.Task[None]] = []
        started = 0
        try:
            for recipient, at in zip(claimed, slots, strict=True):
                delay = at - loop.time()
                if delay > 0:
                    await self.halt.sleep(delay)
                    delay = at - loop.time()
                if self.halt.stopped:
                    break
                if delay < -LATE_SECONDS:
                    self.missed_slots += 1
                    send = self._send_rebooked(recipient, stats)
                else:
                    send = self._send(recipient, stats)
                sends.append(self._track(asyncio.create_task(send)))
                started += 1
        except Exception:  # a pacer never dies silently, nor leaves recipients claimed
            log.exception("pacing sends of %s failed; stopping the lane", self.plan.broadcast_id)
            self.halt.stop(StopReason.TASK_FAILED)
        self._release(claimed[started:])
        if sends:
            await asyncio.gather(*sends)

    async def _send_rebooked(self, recipient: Claimed, stats: BatchStats) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                at = await self.rebooker.slot()
                await self.halt.sleep(at - loop.time())
                if self.halt.stopped or at - loop.time() >= -LATE_SECONDS:
                    break
                self.missed_slots += 1
        except Exception:
            log.exception(
                "booking a new slot for recipient %s failed; it will be retried", recipient.id
            )
            self._done(stats, _internal_error(recipient))
            return
        await self._send(recipient, stats)

    async def _send(self, recipient: Claimed, stats: BatchStats) -> None:
        try:
            if self.halt.stopped:
                outcome = Outcome(recipient.id, OutcomeKind.RELEASE, counts_as_attempt=False)
            else:
                outcome = await self._attempt(recipient)
        except Exception:  # never leave a claimed recipient without an outcome
            log.exception(
                "send to recipient %s failed unexpectedly; it will be retried", recipient.id
            )
            outcome = _internal_error(recipient)
        self._done(stats, outcome)

    def _done(self, stats: BatchStats, outcome: Outcome) -> None:
        stats.add(outcome)
        self.recorder.put(outcome)

    async def _attempt(self, r: Claimed) -> Outcome:
        try:
            result = await self.client.send_template(
                self.plan.target,
                to=r.phone,
                template=self.plan.spec,
                params=r.params,
                callback_data=encode(self.plan.broadcast_id, r.id),
            )
        except WhatsAppError as exc:
            return await self.errors.outcome(r, exc)
        return Outcome(
            r.id,
            OutcomeKind.SENT,
            wamid=result.wamid,
            wa_id=result.wa_id,
            message_status=result.message_status,
        )


def _internal_error(r: Claimed) -> Outcome:
    return sending.Outcome(
        r.id,
        OutcomeKind.RETRY,
        title="internal error",
        counts_as_attempt=False,
        retry_at=utcnow() + timedelta(seconds=5),
    )


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
        group: list[asyncio.Future[float]] = []
        try:
            while self.waiting:
                group, self.waiting = self.waiting, []
                try:
                    reservation = await self.limiter.acquire(
                        self.phone_number_id, self.rate, len(group)
                    )
                except Exception as exc:
                    _fail(group, exc)
                    continue
                offsets = reservation.offsets()
                for future, offset in zip(group, offsets, strict=False):
                    if not future.done():  # a waiter cancelled meanwhile takes nothing
                        future.set_result(reservation.issued_at + offset)
                self.waiting = group[len(offsets) :] + self.waiting
                group = []
        except BaseException as exc:
            # Nobody awaits this task: without this every waiting send would hang for good.
            log.exception("slot booking for %s failed", self.phone_number_id)
            _fail(group + self.waiting, exc if isinstance(exc, Exception) else RuntimeError(exc))
            self.waiting = []
            raise


def _fail(futures: list[asyncio.Future[float]], exc: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(exc)
