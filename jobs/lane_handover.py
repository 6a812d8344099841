"""What comes after a lane's run: stop the broadcast for an error, complete it, or say which
lanes to queue next (queued by the caller once the run has let go of its lock)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broadcasts import sending, service
from broadcasts.enums import BroadcastStatus
from broadcasts.models import Broadcast, utcnow
from jobs import broadcast_events
from jobs.broadcast_events import EventKind
from jobs.lane_db import in_transaction
from jobs.lane_plan import Plan, status_of
from jobs.lane_stop import EndReason, StopReason
from jobs.runtime import Runtime
from kapso.errors import ErrorAction, WhatsAppError

POLL_SECONDS = 0.5  # when others still hold sends in flight, look again this soon


@dataclass(frozen=True)
class FollowUp:
    """Lanes to queue once this run has let go of its lock: queued earlier, the next run could
    find the lock still held and give up."""

    lanes: int
    delay: float


@dataclass(frozen=True)
class RunEnd:
    """How a run ended, as the hand-over needs it."""

    stop: StopReason | None
    end: EndReason | None
    exhausted: bool  # nothing was left to claim
    broadcast_error: WhatsAppError | None
    auto_pause: str | None


class HandOver:
    def __init__(self, runtime: Runtime, broadcast_id: str) -> None:
        self.runtime = runtime
        self.broadcast_id = broadcast_id
        self.follow_up: FollowUp | None = None

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await in_transaction(self.runtime.sessions, fn, *args)

    async def _publish(self, kind: str, **data: Any) -> None:
        """Off the lane's event loop, like every other Redis call the lane makes in a thread."""
        await asyncio.to_thread(
            broadcast_events.publish, self.runtime.redis, self.broadcast_id, kind, **data
        )

    async def after(self, plan: Plan, run: RunEnd) -> str:
        """After the slice: stop the broadcast, complete it, or queue what comes next."""
        if run.broadcast_error is not None:
            exc = run.broadcast_error
            await self.stop_broadcast(str(exc), fail=exc.action is ErrorAction.FAIL_BROADCAST)
            return f"stopped: {exc}"
        if run.auto_pause:
            await self.stop_broadcast(run.auto_pause, fail=False)
            return "auto-paused"
        if run.end is EndReason.CRASHED:
            return str(EndReason.CRASHED)  # the heartbeat goes stale; maintenance revives it
        status = await self._db(status_of, self.broadcast_id)
        if status != BroadcastStatus.SENDING:
            return f"broadcast {status}"
        if run.end is EndReason.BATCH_DONE:
            when = utcnow() + timedelta(seconds=plan.pause_seconds)
            await self._db(lambda s: sending.heartbeat(s, self.broadcast_id, next_batch_at=when))
            self.follow_up = FollowUp(1, plan.pause_seconds)
            await self._publish(EventKind.PROGRESS)
            return str(EndReason.BATCH_DONE)
        if not run.exhausted:  # time slice over or worker shutting down: continue elsewhere
            self.follow_up = FollowUp(plan.lanes, 0.0)
            return str(run.stop or run.end or EndReason.SLICE_OVER)
        return await self._finish()

    async def _finish(self) -> str:
        """Nothing left to claim now: complete, or come back when deferred retries are due."""
        result, due = await self._db(_finish, self.broadcast_id)
        if result == "completed":
            await self._publish(EventKind.COMPLETED)
        elif due is not None:
            self.follow_up = FollowUp(1, max(0.0, (due - utcnow()).total_seconds()))
        elif result == "others in flight":  # they may come back as retries: look again soon
            self.follow_up = FollowUp(1, POLL_SECONDS)
        return str(result)

    async def stop_broadcast(self, reason: str, *, fail: bool) -> None:
        def stop(session: Any) -> str | None:
            broadcast = session.get(Broadcast, self.broadcast_id)
            if broadcast is None:
                return None
            return service.stop_for_error(session, broadcast, reason, fail=fail)

        kind = await self._db(stop)
        if kind:
            await self._publish(kind, reason=reason, auto=True)


def _finish(session: Any, broadcast_id: str) -> tuple[str, datetime | None]:
    due = sending.next_due(session, broadcast_id)
    if due is not None:
        sending.heartbeat(session, broadcast_id, next_batch_at=due)
        return "retries pending", due
    if sending.in_flight(session, broadcast_id):
        return "others in flight", None
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.status != BroadcastStatus.SENDING:
        return "not sending", None
    service.complete_broadcast(session, broadcast)
    return "completed", None
