"""Adding recipients to a broadcast: bulk, idempotent on (broadcast, phone), counted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from broadcasts import recipient_status
from broadcasts.enums import RecipientStatus
from broadcasts.lifecycle import ensure_editable
from broadcasts.models import Broadcast, Recipient, utcnow

CHUNK = 1000


@dataclass(frozen=True)
class NewRecipient:
    phone: str
    params: dict[str, Any] = field(default_factory=dict)
    contact_id: int | None = None


def insert_recipients(
    session: Session,
    broadcast: Broadcast,
    recipients: Sequence[NewRecipient],
    *,
    import_id: int | None = None,
) -> int:
    """Insert the recipients not already in the broadcast; returns how many were new."""
    ensure_editable(broadcast.name, broadcast.status)
    if not recipients:
        return 0
    dialect = session.get_bind().dialect.name
    now = utcnow()
    added = 0
    for start in range(0, len(recipients), CHUNK):
        chunk = recipients[start : start + CHUNK]
        values = [
            {
                "broadcast_id": broadcast.id,
                "phone": r.phone,
                "params": r.params,
                "contact_id": r.contact_id,
                "import_id": import_id,
                "status": RecipientStatus.PENDING.value,
                "attempts": 0,
                "created_at": now,
            }
            for r in chunk
        ]
        stmt: Any
        if dialect == "postgresql":
            stmt = (
                postgresql.insert(Recipient)
                .values(values)
                .on_conflict_do_nothing(index_elements=["broadcast_id", "phone"])
            )
        elif dialect == "sqlite":
            stmt = (
                sqlite.insert(Recipient)
                .values(values)
                .on_conflict_do_nothing(index_elements=["broadcast_id", "phone"])
            )
        else:  # pragma: no cover - only the two supported backends
            raise NotImplementedError(f"unsupported database {dialect}")
        # RETURNING counts reliably on both backends (psycopg reports rowcount -1 here).
        added += len(session.execute(stmt.returning(Recipient.id)).all())
    recipient_status.count_added(session, broadcast.id, added)
    session.refresh(broadcast)
    return added


def first_params(
    session: Session, broadcast_id: str, *, pending_only: bool = False
) -> dict[str, Any]:
    """The first recipient's template parameters (of those still to send, if `pending_only`):
    the sample a confirmation or a test send shows."""
    query = select(Recipient.params).where(Recipient.broadcast_id == broadcast_id)
    if pending_only:
        query = query.where(Recipient.status == RecipientStatus.PENDING)
    params = session.scalar(query.order_by(Recipient.id).limit(1))
    return dict(params or {})
