"""Inbound messages handed to agents: signed POSTs with retries, Slack threads, replies back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcasts.actors import Actor
from broadcasts.conversations import add_message, in_service_window
from broadcasts.db import transaction
from broadcasts.enums import DeliveryStatus, Direction
from broadcasts.errors import NotFoundError, ValidationFailed
from broadcasts.models import (
    Agent,
    AgentDelivery,
    Broadcast,
    Contact,
    Conversation,
    Message,
    Recipient,
    TestSend,
    WhatsAppConfig,
    utcnow,
)
from broadcasts.replies import attribute_test_reply
from jobs import offload
from jobs import runtime as runtime_mod
from jobs.delivery_retries import record_attempt
from jobs.runtime import Runtime
from kapso.templates import render_body
from kapso.webhooks import NOT_REPLIES, message_content, sign

log = logging.getLogger(__name__)
_held: set[int] = set()  # deliveries waiting for or running on their agent's threads here
_held_lock = threading.Lock()

OFFLOAD = "agent-deliveries"  # the jobs.offload name deliveries run on inside a worker
PER_AGENT_IN_FLIGHT = 4
SIGNATURE_HEADER = "X-Broadcast-Signature"


# --- payload -----------------------------------------------------------------------------------


def iso_z(at: datetime) -> str:
    """`2024-12-20T10:00:00Z`: ISO 8601 in UTC, as the seed shows it."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def broadcast_context(broadcast: Broadcast, recipient: Recipient) -> dict[str, Any]:
    """Which broadcast a reply answers: the seed's five fields with the seed's meanings
    (`template_content` is the template's text with its `{{…}}` placeholders), then our
    additions under their own names (what this recipient got)."""
    sent_at = recipient.sent_at or broadcast.started_at or broadcast.created_at
    return _context(broadcast, recipient.params or {}, recipient.wamid, sent_at, is_test=False)


def context_of_test_send(broadcast: Broadcast, test_send: TestSend) -> dict[str, Any]:
    """The same context for a reply to a test send, marked `is_test` (not in any metric)."""
    return _context(broadcast, test_send.params or {}, test_send.wamid, test_send.sent_at, True)


def _context(
    broadcast: Broadcast,
    params: dict[str, Any],
    wamid: str | None,
    sent_at: datetime,
    is_test: bool,
) -> dict[str, Any]:
    template = broadcast.template
    return {
        "broadcast_id": broadcast.id,
        "broadcast_name": broadcast.name,
        "template_name": template.name,
        "template_content": template.body_text,
        "sent_at": iso_z(sent_at),
        "template_language": template.language,
        "parameters": {str(k): v for k, v in params.items()},
        "rendered_content": render_body(template.body_text, params),
        "wamid": wamid,
        "is_test": is_test,
    }


def reply_context(
    session: Session,
    broadcast: Broadcast | None,
    recipient: Recipient | None,
    *,
    config_id: int,
    wa_id: str | None,
    context_id: str | None,
    at: datetime,
    window_hours: float,
) -> dict[str, Any] | None:
    """The broadcast_context of an inbound message: its broadcast recipient's, else the test
    send it answers (quoted, or the latest to this sender within the window), else None."""
    if broadcast is not None and recipient is not None:
        return broadcast_context(broadcast, recipient)
    test_send = attribute_test_reply(
        session,
        config_id=config_id,
        wa_id=wa_id,
        context_id=context_id,
        at=at,
        window_hours=window_hours,
    )
    if test_send is None:
        return None
    tested = session.get(Broadcast, test_send.broadcast_id)
    return context_of_test_send(tested, test_send) if tested is not None else None


def agent_payload(
    *,
    idempotency_key: str,
    config: WhatsAppConfig,
    message: Message,
    raw_message: dict[str, Any],
    contact: Contact,
    conversation: Conversation,
    is_new: bool,
    context: dict[str, Any] | None,
) -> dict[str, Any]:
    """The JSON an agent receives for one inbound message (docs/webhooks-and-agents.md)."""
    return {
        "event": "message.received",
        "idempotency_key": idempotency_key,
        "message": typed_message(message, raw_message, contact),
        "contact": {
            "id": contact.id,
            "phone": contact.phone,
            "wa_id": contact.wa_id,
            "user_id": contact.user_id,
            "username": contact.username,
            "name": contact.name,
            "opted_out": contact.opted_out_at is not None,
        },
        "conversation": {"id": conversation.id, "is_new": is_new},
        "whatsapp_config": {"name": config.name, "phone_number_id": config.phone_number_id},
        "broadcast_context": context,
    }


def typed_message(message: Message, raw: dict[str, Any], contact: Contact) -> dict[str, Any]:
    """The `message` part: every field always present (None when it does not apply), so an
    agent can switch on `kind` (text, image, video, audio, document, sticker, location,
    contacts, reaction, order, interactive, button, system, revoke, edit, unsupported …)."""
    content = message_content(raw)
    button = raw.get("button") if isinstance(raw.get("button"), dict) else None
    interactive = raw.get("interactive")
    return {
        "id": message.wamid,
        "from": raw.get("from") or contact.wa_id,
        "from_user_id": raw.get("from_user_id") or contact.user_id,
        "username": contact.username,
        "type": message.type,
        "kind": content["kind"],
        "is_reply": content["kind"] not in NOT_REPLIES,
        "text": message.text,
        "caption": content.get("caption"),
        "timestamp": iso_z(message.timestamp),
        "context_id": (raw.get("context") or {}).get("id"),
        "button": button,
        "interactive": interactive if isinstance(interactive, dict) else None,
        "interactive_reply": content.get("interactive"),
        "media": content.get("media"),
        "location": content.get("location"),
        "contacts": content.get("contacts"),
        "reaction": content.get("reaction"),
        "order": content.get("order"),
        "system": content.get("system"),
        "target_message_id": content.get("target_message_id"),
        "edit": content.get("edit"),
        "referral": content.get("referral"),
        "errors": content.get("errors"),
        "raw": raw,
    }


def idempotency_key_for(agent_id: int, wamid: str) -> str:
    return "msg_" + hashlib.sha256(f"{agent_id}:{wamid}".encode()).hexdigest()[:40]


def create_delivery(
    session: Session, agent: Agent, message: Message, payload: dict[str, Any]
) -> AgentDelivery | None:
    """Record the hand-over (once per agent and message); None when it already exists."""
    key = str(payload["idempotency_key"])
    if session.scalar(select(AgentDelivery.id).where(AgentDelivery.idempotency_key == key)):
        return None
    delivery = AgentDelivery(
        agent_id=agent.id,
        message_id=message.id,
        idempotency_key=key,
        status=DeliveryStatus.PENDING,
        payload=payload,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(delivery)
    session.flush()
    return delivery


# --- webhook delivery --------------------------------------------------------------------------


def agent_signature(raw: bytes, secret: str) -> str:
    """What SIGNATURE_HEADER carries: `sha256=` and the body's hex HMAC-SHA256, as Meta signs."""
    return "sha256=" + sign(raw, secret)


def deliver(delivery_id: int) -> str:
    """RQ job: POST one delivery to its webhook agent; on failure record it and retry later.

    Inside a worker the POST runs on the agent's own threads (at most PER_AGENT_IN_FLIGHT at a
    time, the rest in order behind them), so a slow or failing agent delays only its own
    messages and the worker goes on with the next job at once."""
    work = offload.get(OFFLOAD)
    if work is None:
        return _deliver_now(delivery_id)
    runtime = runtime_mod.current()
    with transaction(runtime.sessions) as session:
        agent_id = session.scalar(
            select(AgentDelivery.agent_id).where(
                AgentDelivery.id == delivery_id, AgentDelivery.status == DeliveryStatus.PENDING
            )
        )
    if agent_id is None:
        return "nothing to do"
    with _held_lock:
        if delivery_id in _held:  # already waiting for its agent here (a requeue found it)
            return "already queued"
        _held.add(delivery_id)
    work.submit(f"agent-{agent_id}", _deliver_held, delivery_id)
    return "queued for its agent"


def _deliver_held(delivery_id: int) -> None:
    try:
        _deliver_now(delivery_id)
    finally:
        with _held_lock:
            _held.discard(delivery_id)


def _deliver_now(delivery_id: int) -> str:
    runtime = runtime_mod.current()
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        delivery = session.get(AgentDelivery, delivery_id)
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return "nothing to do"
        agent = session.get(Agent, delivery.agent_id)
        assert agent is not None
        url, secret_env, payload = agent.url, agent.secret_env, delivery.payload
        key = delivery.idempotency_key
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    error = _post(raw, url, secret_env, key, settings.agent_timeout_seconds)
    return record_attempt(runtime, delivery_id, error)


def _post(
    raw: bytes, url: str | None, secret_env: str | None, key: str, timeout: float
) -> str | None:
    """One attempt; None on a 2xx, else what went wrong (never the secret)."""
    if not url:
        return "the agent has no URL"
    headers = {"Content-Type": "application/json", "X-Idempotency-Key": key}
    if secret_env:
        secret = os.environ.get(secret_env)
        if not secret:
            return f"environment variable {secret_env} (the agent's signing secret) is not set"
        headers[SIGNATURE_HEADER] = agent_signature(raw, secret)
    try:
        response = httpx.post(url, content=raw, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return f"timed out after {timeout:g}s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:300]}"


def list_deliveries(
    session: Session,
    *,
    status: str | None = None,
    limit: int = 50,
    delivery_id: int | None = None,
) -> list[tuple[AgentDelivery, Agent]]:
    query = select(AgentDelivery, Agent).join(Agent, Agent.id == AgentDelivery.agent_id)
    if delivery_id is not None:
        query = query.where(AgentDelivery.id == delivery_id)
    if status:
        try:
            query = query.where(AgentDelivery.status == DeliveryStatus(status))
        except ValueError:
            allowed = ", ".join(s.value for s in DeliveryStatus)
            raise ValidationFailed(
                f"Unknown delivery status '{status}' (one of {allowed})."
            ) from None
    rows = session.execute(query.order_by(AgentDelivery.id.desc()).limit(limit)).all()
    return [(d, a) for d, a in rows]


# --- replies from agents back to WhatsApp ------------------------------------------------------


def send_agent_reply(runtime: Runtime, conversation_id: str, text: str, by: Actor) -> Message:
    """Send a teammate's text to the contact, inside WhatsApp's 24-hour customer-service window."""
    from jobs.whatsapp_targets import target_for
    from kapso.client import WhatsAppClient

    body = text.strip()
    if not body:
        raise ValidationFailed("The reply is empty.", field="text")
    with transaction(runtime.sessions) as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise NotFoundError(f"No conversation '{conversation_id}'.")
        contact = session.get(Contact, conversation.contact_id)
        config = session.get(WhatsAppConfig, conversation.config_id)
        assert contact is not None and config is not None
        now = utcnow()
        if not in_service_window(conversation, now):
            last = conversation.last_inbound_at
            when = f"was at {iso_z(last)}" if last else "never came"
            raise ValidationFailed(
                f"Not sent: {contact.phone}'s last message {when}, more than 24 hours ago, and "
                "WhatsApp only allows approved templates outside the 24-hour window.",
                field="text",
            )
        target = target_for(config)
        to = contact.wa_id or contact.phone or contact.user_id
        if to is None:
            raise ValidationFailed(f"Contact {contact.id} has no number or user id to reply to.")

    async def send() -> Any:
        async with WhatsAppClient(max_in_flight=1) as client:
            return await client.send_text(target, to=to, body=body)

    result = asyncio.run(send())
    with transaction(runtime.sessions) as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        conversation.last_message_at = max(conversation.last_message_at, utcnow())
        return add_message(
            session,
            conversation,
            direction=Direction.OUTBOUND,
            wamid=result.wamid,
            type="text",
            text=body,
            at=utcnow(),
            sent_by=by.id,
            status="accepted",
        )
