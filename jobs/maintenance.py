"""The maintenance loop every worker runs (one at a time across workers, by a Redis lock):
start due schedules, release claims whose worker died, complete finished broadcasts, put
stalled broadcasts back on a lane (also after Redis lost its queues), requeue unprocessed
webhooks. It reads the database, not Redis, to decide: Redis may have been flushed."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from broadcasts import recipient_status, sending, service
from broadcasts.actors import Actor
from broadcasts.db import transaction
from broadcasts.enums import BroadcastStatus
from broadcasts.errors import BroadcastBotError
from broadcasts.models import Broadcast, utcnow
from jobs import broadcast_control, broadcast_events, inbox, keys
from jobs.broadcast_events import EventKind
from jobs.lane_plan import lane_count
from jobs.runtime import Runtime
from jobs.sender import enqueue_lanes

log = logging.getLogger(__name__)

STALE_HEARTBEAT = timedelta(seconds=6)  # a lane claims (and heartbeats) every ~2 s


def run_once(runtime: Runtime) -> dict[str, int]:
    """One pass; returns what it did (for logs and tests)."""
    done = {"released": 0, "started": 0, "completed": 0, "revived": 0, "webhooks": 0}
    grace = timedelta(seconds=runtime.settings.send_claim_grace_seconds)
    with transaction(runtime.sessions) as session:
        done["released"] = recipient_status.release_stale_claims(session, older_than=grace)
        due = sending.due_scheduled(session)
        active = sending.sending_broadcast_ids(session)
    for broadcast_id in due:
        done["started"] += _start_scheduled(runtime, broadcast_id)
    for broadcast_id in active:
        outcome = _tend(runtime, broadcast_id)
        if outcome:
            done[outcome] += 1
    done["webhooks"] = inbox.requeue_stale(runtime)
    return done


def _start_scheduled(runtime: Runtime, broadcast_id: str) -> int:
    try:
        broadcast_control.start(runtime, broadcast_id, by=Actor.system())
        return 1
    except BroadcastBotError as exc:
        reason = f"The scheduled start failed: {exc}"
        log.warning("broadcast %s: %s", broadcast_id, reason)
        with transaction(runtime.sessions) as session:
            broadcast = service.unschedule_broadcast(session, broadcast_id, by=Actor.system())
            broadcast.status_reason = reason
        broadcast_events.publish(runtime.redis, broadcast_id, EventKind.ALERT, reason=reason)
        return 0


def _tend(runtime: Runtime, broadcast_id: str) -> str | None:
    """Complete a finished broadcast, or revive one whose lanes are gone."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None or broadcast.status != BroadcastStatus.SENDING:
            return None
        if broadcast.pending_count == 0:
            service.complete_broadcast(session, broadcast)
            completed = True
        else:
            completed = False
            lanes = lane_count(broadcast, runtime.settings)
            fresh = (
                broadcast.heartbeat_at is not None
                and now - broadcast.heartbeat_at < STALE_HEARTBEAT
            )
            waiting = (
                broadcast.next_batch_at is not None
                and broadcast.next_batch_at > now - timedelta(seconds=2)
            )
    if completed:
        broadcast_events.publish(runtime.redis, broadcast_id, EventKind.COMPLETED)
        return "completed"
    if fresh or waiting or _lanes_alive(runtime, broadcast_id, lanes):
        return None
    log.info("reviving broadcast %s (%d lanes)", broadcast_id, lanes)
    enqueue_lanes(runtime, broadcast_id, lanes)
    return "revived"


def _lanes_alive(runtime: Runtime, broadcast_id: str, lanes: int) -> bool:
    """A lane is alive when it holds its lock, or its job waits in a queue."""
    for lane in range(lanes):
        if runtime.redis.exists(keys.lane_lock(broadcast_id, lane)):
            return True
        try:
            status = Job.fetch(
                keys.send_job(broadcast_id, lane), connection=runtime.redis
            ).get_status()
        except NoSuchJobError:
            continue
        if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            return True
    return False


def loop(runtime: Runtime, stop: threading.Event) -> None:
    """Run `run_once` every interval while this process holds the maintenance lock."""
    interval = runtime.settings.maintenance_interval_seconds
    while not stop.wait(interval):
        try:
            if runtime.redis.set(keys.MAINTENANCE_LOCK, "1", nx=True, px=int(interval * 900)):
                done = run_once(runtime)
                if any(done.values()):
                    log.info("maintenance: %s", done)
        except Exception:
            log.exception("maintenance pass failed; retrying next interval")
