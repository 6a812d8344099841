"""Conversations per number and contact: created or resumed, with their messages."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcasts.enums import Direction
from broadcasts.models import Contact, Conversation, Message

# WhatsApp's customer-service window: free-form replies only within 24 h of the last inbound.
SERVICE_WINDOW = timedelta(hours=24)


def contact_for_sender(
    session: Session,
    *,
    wa_id: str | None,
    profile_name: str | None,
    at: datetime,
    phone_hint: str | None = None,
    user_id: str | None = None,
    username: str | None = None,
) -> Contact:
    """Find the sender's contact (by user id, wa_id, then number) or create it, keeping every
    identifier WhatsApp gave. Seen first by user id and later with a number (or the other way
    round), it stays one contact: a number-less placeholder hands its user id to the number's."""
    if wa_id is None and user_id is None:
        raise ValueError("a sender needs a phone number or a business-scoped user id")
    by_user = session.scalar(select(Contact).where(Contact.user_id == user_id)) if user_id else None
    by_number = (
        session.scalar(select(Contact).where(Contact.wa_id == wa_id).limit(1)) if wa_id else None
    )
    for phone in (phone_hint, f"+{wa_id}" if wa_id else None):
        if by_number is None and phone:
            by_number = session.scalar(select(Contact).where(Contact.phone == phone))
    contact = by_user or by_number
    placeholder = by_user is not None and by_user.phone is None
    if placeholder and by_number is not None and by_user is not by_number:
        assert by_user is not None
        by_user.user_id = None  # the number-less placeholder gives way to the number's contact
        session.flush()
        contact = by_number
    if contact is None:
        number = phone_hint or (f"+{wa_id}" if wa_id else None)
        contact = Contact(phone=number, wa_id=wa_id, name=profile_name, source="whatsapp")
        contact.attributes = {}
        session.add(contact)
    if contact.phone is None and wa_id:
        contact.phone = phone_hint or f"+{wa_id}"
    contact.wa_id = contact.wa_id or wa_id
    if user_id and contact.user_id != user_id:
        contact.user_id = user_id  # a new number brings a new user id: keep the latest
    if username:
        contact.username = username[:64]
    if profile_name and contact.name != profile_name:
        contact.name = profile_name[:255]
    if contact.last_inbound_at is None or contact.last_inbound_at < at:
        contact.last_inbound_at = at
    session.flush()
    return contact


def open_conversation(
    session: Session,
    *,
    config_id: int,
    contact_id: int,
    at: datetime,
    inactivity_hours: float,
    broadcast_id: str | None,
    agent_id: int | None,
) -> tuple[Conversation, bool]:
    """Resume the contact's conversation on this number if active recently, else start one."""
    latest = session.scalar(
        select(Conversation)
        .where(Conversation.config_id == config_id, Conversation.contact_id == contact_id)
        .order_by(Conversation.last_message_at.desc())
        .limit(1)
        .with_for_update()
    )
    if latest is not None and latest.last_message_at >= at - timedelta(hours=inactivity_hours):
        latest.last_message_at = max(latest.last_message_at, at)
        latest.last_inbound_at = max(latest.last_inbound_at or at, at)
        return latest, False
    conversation = Conversation(
        config_id=config_id,
        contact_id=contact_id,
        broadcast_id=broadcast_id,
        agent_id=agent_id,
        started_at=at,
        last_message_at=at,
        last_inbound_at=at,
    )
    session.add(conversation)
    session.flush()
    return conversation, True


def message_exists(session: Session, wamid: str) -> bool:
    return session.scalar(select(Message.id).where(Message.wamid == wamid)) is not None


def add_message(
    session: Session,
    conversation: Conversation,
    *,
    direction: Direction,
    wamid: str | None,
    type: str,
    text: str | None,
    at: datetime,
    payload: dict[str, Any] | None = None,
    broadcast_id: str | None = None,
    recipient_id: int | None = None,
    sent_by: str | None = None,
    status: str | None = None,
) -> Message:
    message = Message(
        conversation_id=conversation.id,
        direction=direction,
        wamid=wamid,
        type=type[:32],
        text=text,
        payload=payload or {},
        broadcast_id=broadcast_id,
        recipient_id=recipient_id,
        sent_by=sent_by,
        status=status,
        timestamp=at,
    )
    session.add(message)
    session.flush()
    return message


def in_service_window(conversation: Conversation, now: datetime) -> bool:
    """Whether a free-form message may still be sent (24 h after the contact's last message)."""
    last = conversation.last_inbound_at
    return last is not None and now - last < SERVICE_WINDOW
