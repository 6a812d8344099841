"""The audit log: who did what to which broadcast, from Slack, the CLI or the system."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
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


@dataclass(frozen=True)
class AuditLine:
    """One audit entry ready to show: when, who, from where, and what in a phrase."""

    at: datetime
    actor: str
    via: str
    action: str
    summary: str
    detail: dict[str, Any]


_PHRASES: dict[str, str] = {
    "broadcast.create": "created it with template {template}; replies go to {agent}",
    "broadcast.schedule": "scheduled it for {at}",
    "broadcast.unschedule": "unscheduled it",
    "broadcast.start": "started sending",
    "broadcast.pause": "paused it",
    "broadcast.resume": "resumed it",
    "broadcast.complete": "it completed",
    "broadcast.cancel": "cancelled it",
    "broadcast.fail": "it failed",
    "broadcast.import": "imported a file: {accepted} recipients added",
    "broadcast.add_contacts": "added {added} saved contacts",
    "broadcast.remove_recipients": "removed {removed} recipients",
    "broadcast.edit": "edited it (name '{name}', template {template})",
    "broadcast.pacing": "changed the pacing",
    "broadcast.test_send": "sent a test to {to}",
    "broadcast.retry": "made a retry draft with {recipients} recipients",
    "broadcast.retry_of": "created this retry with {recipients} recipients",
    "broadcast.duplicate": "duplicated it with {recipients} recipients",
    "broadcast.duplicate_of": "created this copy with {recipients} recipients",
}


def describe(action: str, detail: dict[str, Any]) -> str:
    """A phrase for an audit entry; unknown actions and extra details show as key=value."""
    phrase = _PHRASES.get(action)
    text = action
    if phrase is not None:
        try:
            text = phrase.format(**detail)
        except (KeyError, IndexError, ValueError):
            text = phrase.split(" {", 1)[0].split("{", 1)[0].strip() or action
    extras = []
    if action.startswith("broadcast.") and "from" in detail and "to" in detail:
        extras.append(f"{detail['from']} → {detail['to']}")
    for key in ("reason", "how", "import_id", "filename", "not_found", "removed_unfit"):
        value = detail.get(key)
        if value not in (None, "", 0, []):
            extras.append(f"{key.replace('_', ' ')}: {value}")
    if action in ("broadcast.retry", "broadcast.retry_of") and detail.get("left_out"):
        left = ", ".join(f"{k} {v}" for k, v in sorted(detail["left_out"].items()))
        extras.append(f"left out: {left}")
    return text + (f" ({'; '.join(extras)})" if extras else "")


def entries(session: Session, broadcast_id: str, *, limit: int | None = None) -> list[AuditLine]:
    """The broadcast's audit trail, oldest first (the last `limit` entries when given)."""
    query = select(AuditEntry).where(AuditEntry.broadcast_id == broadcast_id)
    if limit is not None:
        query = query.order_by(AuditEntry.id.desc()).limit(limit)
    else:
        query = query.order_by(AuditEntry.id)
    rows = sorted(session.scalars(query), key=lambda e: e.id)
    return [
        AuditLine(
            e.created_at,
            e.actor,
            e.via,
            e.action,
            describe(e.action, e.detail or {}),
            e.detail or {},
        )
        for e in rows
    ]


def count(session: Session, broadcast_id: str) -> int:
    return int(
        session.scalar(select(func.count()).where(AuditEntry.broadcast_id == broadcast_id)) or 0
    )
