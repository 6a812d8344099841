"""The audit log: who did what to which broadcast, from Slack, the CLI or the system."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcasts.models import AuditEntry


def record(
    session: Session,
    action: str,
    *,
    actor: str,
    via: str,
    broadcast_id: str | None = None,
    **detail: Any,
) -> AuditEntry:
    entry = AuditEntry(
        action=action, actor=actor, via=via, broadcast_id=broadcast_id, detail=detail
    )
    session.add(entry)
    return entry


def history(session: Session, broadcast_id: str) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.broadcast_id == broadcast_id)
            .order_by(AuditEntry.id)
        )
    )
