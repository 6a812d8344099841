"""The database side of sending: claim recipients, record outcomes, find what is due next.

The database is the source of truth: a recipient is `sending` from the moment it is claimed until
its outcome is recorded. A claim older than the grace period whose outcome never came (a killed
worker) is released back to `pending` (broadcasts.recipient_status.release_stale_claims) — unless
a status webhook has meanwhile proved that WhatsApp accepted it (matched through
`biz_opaque_callback_data`), in which case it is already `sent`. The status writes themselves
are all in broadcasts.recipient_status.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from broadcasts import recipient_status
from broadcasts.backoff import backoff_seconds
from broadcasts.contacts import set_opt_out
from broadcasts.enums import BroadcastStatus
from broadcasts.enums import RecipientStatus as R
from broadcasts.models import Broadcast, Contact, Recipient, utcnow
from broadcasts.recipient_status import CounterDeltas, mark_failed, mark_sent, mark_skipped

MAX_ATTEMPTS = 6


class OutcomeKind(StrEnum):
    """What became of one claimed recipient."""

    SENT = "sent"  # WhatsApp accepted it
    FAILED = "failed"  # a permanent error: recorded, never retried
    RETRY = "retry"  # a temporary error: back to pending, due at `retry_at`
    RELEASE = "release"  # never attempted (the lane stopped): back to pending as it was
    SKIP = "skip"  # not sent on purpose (e.g. the recipient opted out)


@dataclass(frozen=True)
class Claimed:
    id: int
    phone: str
    params: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed recipient."""

    recipient_id: int
    kind: OutcomeKind
    wamid: str | None = None
    wa_id: str | None = None
    message_status: str | None = None
    code: int | None = None
    title: str | None = None
    detail: str | None = None
    retry_at: datetime | None = None
    counts_as_attempt: bool = True
    opt_out: bool = False
    throttled: bool = False  # WhatsApp asked the number to slow down (the error policy decides)


@dataclass
class BatchStats:
    """Outcomes of one batch, for the circuit breaker and the progress notes."""

    attempted: int = 0
    failed: int = 0
    codes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        if outcome.kind in (OutcomeKind.SENT, OutcomeKind.FAILED):
            self.attempted += 1
        if outcome.kind == OutcomeKind.FAILED:
            self.failed += 1
            self.codes[f"{outcome.code} {outcome.title or ''}".strip()] += 1

    @property
    def failure_share(self) -> float:
        return self.failed / self.attempted if self.attempted else 0.0


def claim(
    session: Session, broadcast_id: str, limit: int, *, now: datetime | None = None
) -> list[Claimed]:
    """Atomically move up to `limit` due pending recipients to `sending` and return them."""
    now = now or utcnow()
    # The ids first, then the UPDATE by that list: as one statement, PostgreSQL may evaluate the
    # LIMIT … SKIP LOCKED subquery more than once and claim more than `limit` rows.
    ids = list(
        session.scalars(
            select(Recipient.id)
            .where(
                Recipient.broadcast_id == broadcast_id,
                Recipient.status == R.PENDING,
                (Recipient.next_attempt_at.is_(None)) | (Recipient.next_attempt_at <= now),
            )
            .order_by(Recipient.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    rows = recipient_status.claim(session, ids, now=now)
    return sorted(
        (Claimed(r.id, r.phone, r.params or {}, r.attempts) for r in rows), key=lambda c: c.id
    )


def skip_opted_out(session: Session, claimed: Sequence[Claimed]) -> set[int]:
    """Skip claimed recipients whose contact opted out; returns their ids."""
    if not claimed:
        return set()
    by_phone = {c.phone: c.id for c in claimed}
    opted = set(
        session.scalars(
            select(Contact.phone).where(
                Contact.phone.in_(by_phone), Contact.opted_out_at.is_not(None)
            )
        )
    )
    ids = {by_phone[p] for p in opted if p is not None}
    if not ids:
        return set()
    deltas = CounterDeltas()
    for recipient in session.scalars(select(Recipient).where(Recipient.id.in_(ids))):
        mark_skipped(session, recipient, reason="contact opted out", deltas=deltas)
    deltas.flush(session)
    return ids


def record(session: Session, outcomes: Sequence[Outcome], *, now: datetime | None = None) -> None:
    """Write a group of outcomes in one transaction (one counter UPDATE per broadcast)."""
    if not outcomes:
        return
    now = now or utcnow()
    sent = [o for o in outcomes if o.kind == OutcomeKind.SENT]
    rest = recipient_status.mark_many_sent(session, sent, at=now)
    by_id = {
        o.recipient_id: o for o in outcomes if o.kind != OutcomeKind.SENT or o.recipient_id in rest
    }
    if not by_id:
        return
    query = select(Recipient).where(Recipient.id.in_(by_id)).order_by(Recipient.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    deltas = CounterDeltas()
    opted_out: dict[str, list[str]] = defaultdict(list)  # reason → phones
    recipients = list(session.scalars(query))
    # A cancel skipped every pending recipient; one handed back after it is skipped too.
    cancelled = set(
        session.scalars(
            select(Broadcast.id).where(
                Broadcast.id.in_({r.broadcast_id for r in recipients}),
                Broadcast.status == BroadcastStatus.CANCELLED,
            )
        )
    )
    for recipient in recipients:
        outcome = by_id[recipient.id]
        if outcome.kind == OutcomeKind.SENT:
            assert outcome.wamid is not None
            mark_sent(
                session,
                recipient,
                wamid=outcome.wamid,
                wa_id=outcome.wa_id,
                message_status=outcome.message_status,
                at=now,
                deltas=deltas,
            )
        elif outcome.kind == OutcomeKind.FAILED:
            mark_failed(
                session,
                recipient,
                code=outcome.code,
                title=outcome.title,
                detail=outcome.detail,
                at=now,
                deltas=deltas,
            )
            if outcome.opt_out:
                opted_out[f"WhatsApp error {outcome.code}: {outcome.title or 'opted out'}"].append(
                    recipient.phone
                )
        elif outcome.kind == OutcomeKind.SKIP:
            reason = outcome.title or "skipped"
            if mark_skipped(session, recipient, reason=reason, deltas=deltas):
                recipient.error_code = outcome.code
            if outcome.opt_out:
                opted_out[reason].append(recipient.phone)
        elif recipient.status == R.SENDING and recipient.broadcast_id in cancelled:
            mark_skipped(session, recipient, reason="broadcast cancelled", deltas=deltas)
        else:  # retry or release: back to the queue
            is_retry = outcome.kind == OutcomeKind.RETRY
            recipient_status.release(
                recipient,
                retry_at=outcome.retry_at,
                error=(outcome.code, outcome.title, outcome.detail) if is_retry else None,
                counts_as_attempt=outcome.counts_as_attempt,
            )
    deltas.flush(session)
    for reason, phones in opted_out.items():
        for phone in phones:
            set_opt_out(session, phone, True, reason, at=now, from_whatsapp=True)


def backoff(attempt: int) -> float:
    """How long a recipient waits before its next attempt: about 2, 4, 8 … s, at most 5 min."""
    return backoff_seconds(attempt, cap=300.0)


def next_due(session: Session, broadcast_id: str) -> datetime | None:
    """When the earliest pending recipient becomes due (None: nothing pending)."""
    row = session.execute(
        select(func.count(), func.min(Recipient.next_attempt_at)).where(
            Recipient.broadcast_id == broadcast_id, Recipient.status == R.PENDING
        )
    ).one()
    if not row[0]:
        return None
    return row[1] or utcnow()


def in_flight(session: Session, broadcast_id: str) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                Recipient.broadcast_id == broadcast_id, Recipient.status == R.SENDING
            )
        )
        or 0
    )


def sending_broadcast_ids(session: Session) -> list[str]:
    return list(
        session.scalars(select(Broadcast.id).where(Broadcast.status == BroadcastStatus.SENDING))
    )


def due_scheduled(session: Session, *, now: datetime | None = None) -> list[str]:
    return list(
        session.scalars(
            select(Broadcast.id).where(
                Broadcast.status == BroadcastStatus.SCHEDULED,
                Broadcast.scheduled_at <= (now or utcnow()),
            )
        )
    )


def heartbeat(
    session: Session, broadcast_id: str, *, next_batch_at: datetime | None = None
) -> None:
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if next_batch_at is not None:
        values["next_batch_at"] = next_batch_at
    session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(**values))
