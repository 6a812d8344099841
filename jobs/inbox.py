"""The webhook inbox: bodies stored before they are acknowledged, then processed once by workers."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis import Redis
from sqlalchemy import Connection, Row, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from broadcasts.models import InboxEvent, utcnow
from jobs import keys
from jobs import runtime as runtime_mod
from jobs.queues import WEBHOOKS, queue
from jobs.runtime import Runtime

log = logging.getLogger(__name__)

# A job carries at most this many inbox rows, or about this many body bytes, so several
# workers share a burst instead of one taking it all.
JOB_MAX_EVENTS = 200
JOB_MAX_BYTES = 512 * 1024
KICK_TTL_SECONDS = 30  # a kick whose job was lost lapses; the maintenance requeue is the net
KICK_BUDGET_SECONDS = 1.0  # one such job works this long, then hands the rest to a new job
# (short: agent and Slack jobs of the same process wait behind it)
REQUEUE_MEMORY_SECONDS = 30.0  # at the least, a requeued row is not queued again for this long


@dataclass(frozen=True)
class NewEvent:
    source: str  # "meta" | "kapso"
    dedup_key: str
    event_type: str | None
    body: str


def dedup_key(source: str, raw: bytes, idempotency_key: str | None = None) -> str:
    """Kapso's idempotency key when given, else the body's hash (Meta redelivers it unchanged)."""
    if idempotency_key:
        return f"{source}:key:{idempotency_key.strip()[:100]}"
    return f"{source}:sha256:{hashlib.sha256(raw).hexdigest()}"


def insert_events(conn: Connection, events: Sequence[NewEvent]) -> list[tuple[int, int]]:
    """Insert in one statement, skipping known dedup keys; (id, body size) of the new rows."""
    if not events:
        return []
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "source": e.source,
            "dedup_key": e.dedup_key,
            "event_type": (e.event_type or "")[:64] or None,
            "body": e.body,
            "received_at": now,
            "attempts": 0,
        }
        for e in {e.dedup_key: e for e in events}.values()
    ]
    dialect = conn.dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(InboxEvent)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(InboxEvent.id, InboxEvent.dedup_key)
    )
    sizes = {r["dedup_key"]: len(r["body"]) for r in rows}
    return [(int(row[0]), sizes[row[1]]) for row in conn.execute(stmt)]


def chunks(ids: Iterable[int]) -> list[list[int]]:
    """Split ids into job-sized lists (a job takes at most JOB_MAX_EVENTS; bodies are sized when
    a job takes waiting ones along, see `_waiting_beside`)."""
    out: list[list[int]] = []
    current: list[int] = []
    for event_id in ids:
        if len(current) >= JOB_MAX_EVENTS:
            out.append(current)
            current = []
        current.append(event_id)
    if current:
        out.append(current)
    return out


def enqueue(redis: Redis[bytes], ids: Sequence[int]) -> None:
    """Queue processing of inbox rows (already durable: a lost job is found by the sweeper)."""
    q = queue(WEBHOOKS, redis)
    for part in chunks(ids):
        q.enqueue(process, part, job_timeout=600, result_ttl=0, failure_ttl=86400)


def kick(redis: Redis[bytes]) -> bool:
    """Web intake: make sure a job will look for waiting bodies soon. One such job waits in the
    queue at a time (a stream of single-status POSTs is one job per batch, not one per POST);
    a job that finds a full batch calls a helper before it starts, so workers share a burst.
    False when one is queued already."""
    if not redis.set(keys.INBOX_KICK, b"1", nx=True, ex=KICK_TTL_SECONDS):
        return False
    queue(WEBHOOKS, redis).enqueue(process, [], job_timeout=600, result_ttl=0, failure_ttl=86400)
    return True


def requeue_stale(
    runtime: Runtime, *, older_than: float | None = None, replay: bool = False
) -> int:
    """Queue again every unprocessed row older than the threshold (after a Redis loss or crash),
    and agent deliveries whose attempt is overdue by as much; returns the inbox rows queued.

    A row the maintenance loop queues (`older_than` not given) is remembered for as long as the
    threshold, so a backlog is queued once per threshold, not on every pass. A row that failed
    `inbox_max_attempts` times is parked: it stays in the inbox with its error (`webhooks
    status`) until replayed (`replay=True`: parked rows get their attempts back, all is queued)."""
    from jobs.delivery_retries import requeue_due

    settings = runtime.settings
    age = settings.inbox_requeue_after_seconds if older_than is None else older_than
    cutoff = utcnow() - timedelta(seconds=age)
    if replay:
        with runtime.engine.begin() as conn:
            conn.execute(
                update(InboxEvent)
                .where(InboxEvent.processed_at.is_(None), InboxEvent.received_at <= cutoff)
                .values(attempts=0)
            )
    with runtime.engine.connect() as conn:
        ids = list(
            conn.scalars(
                select(InboxEvent.id)
                .where(
                    InboxEvent.processed_at.is_(None),
                    InboxEvent.received_at <= cutoff,
                    InboxEvent.attempts < settings.inbox_max_attempts,
                )
                .order_by(InboxEvent.id)
                .limit(100_000)
            )
        )
    if older_than is None:  # the maintenance loop: each row once per threshold
        ids = _not_recently_queued(runtime.redis, ids, max(age, REQUEUE_MEMORY_SECONDS))
    if ids:
        enqueue(runtime.redis, ids)
        log.info("requeued %d unprocessed webhook bodies", len(ids))
    deliveries = requeue_due(runtime, grace_seconds=age)
    if deliveries:
        log.info("requeued %d overdue agent deliveries", deliveries)
    return len(ids)


def _not_recently_queued(redis: Redis[bytes], ids: Sequence[int], seconds: float) -> list[int]:
    """The ids not requeued within `seconds`, now marked as requeued."""
    fresh: list[int] = []
    ttl = max(1, int(seconds))
    for start in range(0, len(ids), 1000):
        part = ids[start : start + 1000]
        pipe = redis.pipeline(transaction=False)
        for event_id in part:
            pipe.set(keys.inbox_requeued(event_id), b"1", nx=True, ex=ttl)
        fresh += [i for i, first in zip(part, pipe.execute(), strict=True) if first]
    return fresh


def _waiting_beside(runtime: Runtime, ids: Sequence[int]) -> list[int]:
    """Other bodies waiting for their first try, taken along up to a job's size: under a stream
    of single-status POSTs one job then does the work of many, and the jobs queued for the rows
    it took find them done."""
    room = JOB_MAX_EVENTS - len(ids)  # the rows of a failed first try wait for the requeue
    if room <= 0:
        return []
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(InboxEvent.id, func.length(InboxEvent.body))
            .where(
                InboxEvent.processed_at.is_(None),
                InboxEvent.attempts == 0,
                InboxEvent.id.not_in(ids),
            )
            .order_by(InboxEvent.id)
            .limit(room)
        ).all()
    taken: list[int] = []
    size = 0
    for event_id, length in rows:
        size += int(length or 0)
        if size > JOB_MAX_BYTES:
            break
        taken.append(int(event_id))
    return taken


def _claim(session: Session, ids: Sequence[int]) -> list[Row[Any]]:
    """Lock the still-unprocessed rows among `ids` (others are done or held by another worker)."""
    query = (
        select(InboxEvent.id, InboxEvent.source, InboxEvent.event_type, InboxEvent.body)
        .where(InboxEvent.id.in_(ids), InboxEvent.processed_at.is_(None))
        .order_by(InboxEvent.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.execute(query))


def process(ids: list[int]) -> int:
    """RQ job: process inbox rows once each (those named, or with none named whatever waits for
    its first try, batch after batch for up to KICK_BUDGET_SECONDS); returns how many."""
    runtime = runtime_mod.current()
    if ids:
        return _process_batch(runtime, ids + _waiting_beside(runtime, ids))
    runtime.redis.delete(keys.INBOX_KICK)  # from here on, a new body queues a new job
    done, deadline = 0, time.monotonic() + KICK_BUDGET_SECONDS
    while True:
        batch = _waiting_beside(runtime, [])
        if not batch:
            return done
        if len(batch) >= JOB_MAX_EVENTS or time.monotonic() > deadline:
            kick(runtime.redis)  # more than one batch waits: another worker may help
            if time.monotonic() > deadline:
                return done
        now_done = _process_batch(runtime, batch)
        if now_done == 0:  # another worker holds them, or they failed: nothing more for us
            return done
        done += now_done


def _process_batch(runtime: Runtime, ids: list[int]) -> int:
    from jobs.webhook_events import Processor

    processor = Processor(runtime)
    try:
        done = _process_together(runtime, processor, ids)
    except Exception as exc:
        # One bad body (or a deadlock) must not hold the others back: one transaction each.
        processor.discard()
        level = logging.WARNING if isinstance(exc, OperationalError) else logging.ERROR
        log.log(level, "batch of %d webhook bodies failed (%s); one by one", len(ids), exc)
        return sum(_process_one(runtime, processor, i) for i in ids)
    processor.after_commit()
    return done


def _process_together(runtime: Runtime, processor: Any, ids: Sequence[int]) -> int:
    with runtime.sessions() as session, session.begin():
        rows = _claim(session, ids)
        if not rows:
            return 0
        processor.handle(session, rows)
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id.in_([row.id for row in rows]))
            .values(processed_at=utcnow(), attempts=InboxEvent.attempts + 1, error=None)
            .execution_options(synchronize_session=False)
        )
        return len(rows)


def _process_one(runtime: Runtime, processor: Any, event_id: int) -> int:
    try:
        done = _process_together(runtime, processor, [event_id])
    except Exception as exc:
        processor.discard()
        log.exception("webhook body %s could not be processed", event_id)
        with runtime.sessions() as session, session.begin():
            session.execute(
                update(InboxEvent)
                .where(InboxEvent.id == event_id)
                .values(attempts=InboxEvent.attempts + 1, error=f"{type(exc).__name__}: {exc}")
            )
        return 0
    processor.after_commit()
    return done
