"""Per-broadcast counters: cheap to read, kept in step with recipients, equal to a recount.

Definitions (the same in Slack, the CLI and reports):
- total: every recipient of the broadcast;
- pending: not attempted yet or in flight (`pending`, `sending`);
- sent: accepted by WhatsApp (`sent_at` set), including messages that later failed to deliver;
- delivered / read / responded: the timestamp is set (read implies delivered);
- failed: status `failed` (rejected at send or undeliverable later);
- skipped: not sent on purpose (cancelled, opted out);
- opted out: replied with an opt-out keyword (STOP …); such a reply is not a response.

Rates, each under its own name (0 when the divisor is 0):
- response rate = responded ÷ total recipients (the seed's "percentage of recipients who
  responded");
- delivery rate = delivered ÷ sent;
- read rate = read ÷ delivered;
- reply rate of delivered = responded ÷ delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from broadcasts.enums import UNSENT
from broadcasts.enums import RecipientStatus as R
from broadcasts.models import Broadcast, Recipient

COUNTER_COLUMNS = (
    "total",
    "pending",
    "sent",
    "delivered",
    "read",
    "responded",
    "failed",
    "skipped",
    "opted_out",
)

# (key, label, what it divides): the rates every surface shows, in this order.
RATES = (
    ("response_rate", "Response rate", "responded ÷ total recipients"),
    ("delivery_rate", "Delivery rate", "delivered ÷ sent"),
    ("read_rate", "Read rate", "read ÷ delivered"),
    ("reply_rate_of_delivered", "Reply rate of delivered", "responded ÷ delivered"),
)


class RecipientLike(Protocol):
    status: str
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    responded_at: datetime | None
    opted_out_at: datetime | None


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True)
class Counts:
    total: int = 0
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    responded: int = 0
    failed: int = 0
    skipped: int = 0
    opted_out: int = 0

    @property
    def response_rate(self) -> float:
        """Responded ÷ total recipients (the seed's definition), 0 without recipients."""
        return _ratio(self.responded, self.total)

    @property
    def delivery_rate(self) -> float:
        return _ratio(self.delivered, self.sent)

    @property
    def read_rate(self) -> float:
        return _ratio(self.read, self.delivered)

    @property
    def reply_rate_of_delivered(self) -> float:
        return _ratio(self.responded, self.delivered)

    def rates(self) -> dict[str, float]:
        return {key: getattr(self, key) for key, _, _ in RATES}

    @property
    def processed(self) -> int:
        return self.total - self.pending

    @property
    def progress(self) -> float:
        return self.processed / self.total if self.total else 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )

    def is_zero(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update({key: round(value, 4) for key, value in self.rates().items()})
        return data


def counts_of(r: RecipientLike) -> Counts:
    """What one recipient contributes to its broadcast's counters."""
    return Counts(
        total=1,
        pending=1 if r.status in UNSENT else 0,
        sent=1 if r.sent_at is not None else 0,
        delivered=1 if r.delivered_at is not None else 0,
        read=1 if r.read_at is not None else 0,
        responded=1 if r.responded_at is not None else 0,
        failed=1 if r.status == R.FAILED else 0,
        skipped=1 if r.status == R.SKIPPED else 0,
        opted_out=1 if r.opted_out_at is not None else 0,
    )


def bump(session: Session, broadcast_id: str, delta: Counts) -> None:
    """Add `delta` to the stored counters atomically (in the caller's transaction)."""
    if delta.is_zero():
        return
    values = {
        f"{name}_count": getattr(Broadcast, f"{name}_count") + getattr(delta, name)
        for name in COUNTER_COLUMNS
        if getattr(delta, name)
    }
    session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(**values))


def stored_counts(broadcast: Broadcast) -> Counts:
    return Counts(**{name: getattr(broadcast, f"{name}_count") for name in COUNTER_COLUMNS})


def recount(session: Session, broadcast_id: str) -> Counts:
    """Count from recipient rows (a full scan of one broadcast: for checks, not for refreshes)."""
    status = Recipient.status

    def total_if(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = session.execute(
        select(
            func.count(),
            total_if(status.in_(UNSENT)),
            total_if(Recipient.sent_at.is_not(None)),
            total_if(Recipient.delivered_at.is_not(None)),
            total_if(Recipient.read_at.is_not(None)),
            total_if(Recipient.responded_at.is_not(None)),
            total_if(status == R.FAILED),
            total_if(status == R.SKIPPED),
            total_if(Recipient.opted_out_at.is_not(None)),
        ).where(Recipient.broadcast_id == broadcast_id)
    ).one()
    return Counts(*(int(v) for v in row))


def repair_counters(session: Session, broadcast_id: str) -> Counts:
    """Overwrite the stored counters with a recount; returns the recount."""
    counts = recount(session, broadcast_id)
    session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id)
        .values(**{f"{name}_count": getattr(counts, name) for name in COUNTER_COLUMNS})
    )
    return counts
