"""Which broadcast an inbound message answers: the quoted template, else the latest one received."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcasts.models import Broadcast, Recipient, TestSend


def attribute_reply(
    session: Session,
    *,
    config_id: int,
    wa_id: str | None,
    context_id: str | None,
    at: datetime,
    window_hours: float,
    user_id: str | None = None,
) -> Recipient | None:
    """The recipient row this message replies to, or None when it is not a broadcast reply.

    A quoted wamid (`context.id`) wins; otherwise the latest broadcast this sender received from
    the same number within the attribution window, found by the business-scoped user id (as
    status webhooks reported it), the wa_id, then the number dialled.
    """
    if context_id:
        quoted = session.scalar(
            select(Recipient)
            .join(Broadcast, Broadcast.id == Recipient.broadcast_id)
            .where(Recipient.wamid == context_id, Broadcast.config_id == config_id)
        )
        if quoted is not None:
            return quoted
    since = at - timedelta(hours=window_hours)
    recent = (
        select(Recipient)
        .join(Broadcast, Broadcast.id == Recipient.broadcast_id)
        .where(
            Broadcast.config_id == config_id,
            Recipient.sent_at.is_not(None),
            Recipient.sent_at >= since,
            Recipient.sent_at <= at + timedelta(minutes=5),
        )
        .order_by(Recipient.sent_at.desc(), Recipient.id.desc())
        .limit(1)
    )
    # Indexed lookups: user id and wa_id as WhatsApp reported them, then the number we dialled.
    found = session.scalar(recent.where(Recipient.user_id == user_id)) if user_id else None
    if found is None and wa_id:
        found = session.scalar(recent.where(Recipient.wa_id == wa_id))
    if found is None and wa_id:
        found = session.scalar(recent.where(Recipient.phone == f"+{wa_id}"))
    return found


def attribute_test_reply(
    session: Session,
    *,
    config_id: int,
    wa_id: str | None,
    context_id: str | None,
    at: datetime,
    window_hours: float,
) -> TestSend | None:
    """The test send a message answers (same rules as attribute_reply), or None."""
    query = select(TestSend).join(Broadcast, Broadcast.id == TestSend.broadcast_id)
    query = query.where(Broadcast.config_id == config_id)
    if context_id:
        quoted = session.scalar(query.where(TestSend.wamid == context_id))
        if quoted is not None:
            return quoted
    if not wa_id:  # a sender known only by user id: no number to match a test send to
        return None
    since = at - timedelta(hours=window_hours)
    return session.scalar(
        query.where(
            TestSend.phone == f"+{wa_id}",
            TestSend.sent_at >= since,
            TestSend.sent_at <= at + timedelta(minutes=5),
        )
        .order_by(TestSend.sent_at.desc(), TestSend.id.desc())
        .limit(1)
    )


def record_test_send(
    session: Session,
    *,
    broadcast_id: str,
    phone: str,
    wamid: str,
    params: dict[str, str],
    sent_by: str,
    at: datetime,
) -> TestSend:
    """Remember a test message so a reply to it reaches the agent with its broadcast context."""
    test_send = TestSend(
        broadcast_id=broadcast_id,
        phone=phone,
        wamid=wamid,
        params=dict(params),
        sent_by=sent_by[:64],
        sent_at=at,
    )
    session.add(test_send)
    session.flush()
    return test_send
