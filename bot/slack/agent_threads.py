"""Slack agents: each conversation is a thread in the agent's channel, headed by its broadcast.

`deliver` is the RQ job the reply pipeline enqueues for agents of kind `slack`; a teammate's
message in such a thread goes back to the contact through `jobs.agents.send_agent_reply`.
"""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot.actors import slack_user
from bot.slack import flows
from bot.slack.blocks.kit import clip, escape, quote
from bot.slack.client import make_client
from broadcasts.db import transaction
from broadcasts.enums import DeliveryStatus
from broadcasts.errors import BroadcastBotError
from broadcasts.models import Agent, AgentDelivery, Conversation
from jobs import keys
from jobs.agents import send_agent_reply
from jobs.delivery_retries import record_attempt
from jobs.runtime import Runtime, current

log = logging.getLogger(__name__)

# How long a Slack event id and message ts are remembered. Slack retries three times within
# about five minutes; a day also covers a redelivery after an outage of our endpoint.
EVENT_MEMORY_SECONDS = 24 * 3600


def header_text(payload: dict[str, Any]) -> str:
    """The first message of a conversation's thread: who wrote, after which broadcast."""
    contact = payload.get("contact") or {}
    # A contact's WhatsApp profile name and texts are anyone's words: escaped, so no mention
    # or link reaches the agents' channel unless we built it.
    who = escape(contact.get("name") or contact.get("phone") or "A contact")
    phone = escape(contact.get("phone") or "")
    ctx = payload.get("broadcast_context")
    if ctx:
        # What the person read: the rendered text (template_content keeps its placeholders).
        received = ctx.get("rendered_content") or ctx.get("template_content") or ""
        what = "a *test send* of broadcast" if ctx.get("is_test") else "broadcast"
        content = escape(clip(str(received), 2500))
        return (
            f"💬 *{who}* ({phone}) replied to {what} *{escape(ctx.get('broadcast_name'))}* "
            f"(template `{escape(ctx.get('template_name'))}`, sent {escape(ctx.get('sent_at'))}).\n"
            f"What they received:\n{quote(content)}\n"
            "Answer in this thread: your messages go to them on WhatsApp."
        )
    return f"💬 *{who}* ({phone}) wrote on WhatsApp. Answer in this thread to reply."


def message_text(payload: dict[str, Any]) -> str:
    """What the customer sent, as a line a teammate can read (media, places, reactions …)."""
    message = payload.get("message") or {}
    kind = str(message.get("kind") or message.get("type") or "message")
    text = message.get("text")
    media, place = message.get("media") or {}, message.get("location") or {}
    reaction, order = message.get("reaction") or {}, message.get("order") or {}
    if media:
        what = media.get("filename") or media.get("mime_type") or kind
        line = f"📎 {kind} ({what}, media id {media.get('id')})" + (f": {text}" if text else "")
    elif place:
        where = ", ".join(str(place[k]) for k in ("name", "address") if place.get(k))
        line = f"📍 {where} ({place.get('latitude')}, {place.get('longitude')})".strip()
    elif kind == "reaction":
        emoji = reaction.get("emoji")
        line = f"reacted {emoji} to a message" if emoji else "removed their reaction"
    elif order:
        items = ", ".join(
            f"{i.get('quantity'):g} × {i.get('product_retailer_id')}"
            for i in order.get("items") or []
            if isinstance(i.get("quantity"), float)
        )
        line = f"🛒 order: {items}" + (f" — {text}" if text else "")
    elif kind == "contacts":
        names = ", ".join(str(c.get("name")) for c in message.get("contacts") or [])
        line = f"👤 shared contacts: {names}"
    elif kind in ("system", "revoke"):
        body = (message.get("system") or {}).get("body")
        line = f"ℹ️ {body}" if body else "ℹ️ deleted a message"
    elif kind == "edit":
        line = f"✏️ edited a message: {text}"
    else:
        line = str(text or f"[{kind}]")
    # The customer's words (and file, place and contact names) are anyone's: escaped.
    return escape(clip(line, 3900))


def deliver(delivery_id: int) -> str:
    runtime = current()
    with transaction(runtime.sessions) as session:
        delivery = session.get(AgentDelivery, delivery_id)
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return "skipped"
        agent = session.get(Agent, delivery.agent_id)
        payload = dict(delivery.payload)
        channel = agent.channel_id if agent else None
    conversation_id = str((payload.get("conversation") or {}).get("id") or "")
    if not channel:
        return record_attempt(
            runtime, delivery_id, "the Slack agent has no channel set", retry=False
        )
    client = make_client(runtime.settings)
    try:
        with runtime.redis.lock(keys.agent_thread_lock(conversation_id), timeout=60):
            thread_ts = _thread(runtime, client, conversation_id, channel, payload)
            client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=message_text(payload)
            )
    except SlackApiError as exc:
        return record_attempt(
            runtime, delivery_id, f"Slack: {exc.response.get('error')}", retry=True
        )
    return record_attempt(runtime, delivery_id, None)


def _thread(
    runtime: Runtime, client: WebClient, conversation_id: str, channel: str, payload: dict[str, Any]
) -> str:
    with transaction(runtime.sessions) as session:
        conversation = session.get(Conversation, conversation_id)
        if (
            conversation is not None
            and conversation.thread_id
            and (conversation.channel_id == channel)
        ):
            return conversation.thread_id
    ts = str(client.chat_postMessage(channel=channel, text=header_text(payload))["ts"])
    with transaction(runtime.sessions) as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is not None:
            conversation.channel_id = channel
            conversation.thread_id = ts
    return ts


def first_delivery(redis: Redis[bytes], *, event_id: str | None, channel: str, ts: str) -> bool:
    """Whether a Slack message event is seen for the first time. Slack redelivers an event whose
    delivery looked failed or slow (same `event_id`, `X-Slack-Retry-Num`), and the same message
    can come again under another event id: both are remembered for EVENT_MEMORY_SECONDS."""
    seen = [keys.slack_message_seen(channel, ts)]
    if event_id:
        seen.append(keys.slack_event_seen(event_id))
    pipe = redis.pipeline()
    for key in seen:
        pipe.set(key, "1", nx=True, ex=EVENT_MEMORY_SECONDS)
    return all(pipe.execute())


def on_human_reply(runtime: Runtime, client: WebClient, event: dict[str, Any]) -> None:
    """A teammate wrote in a conversation thread: send it to the contact on WhatsApp."""
    with transaction(runtime.sessions) as session:
        conversation_id = session.scalar(
            select(Conversation.id).where(
                Conversation.thread_id == event.get("thread_ts"),
                Conversation.channel_id == event.get("channel"),
            )
        )
    if conversation_id is None:
        return
    user = str(event["user"])
    try:
        send_agent_reply(runtime, conversation_id, str(event.get("text") or ""), slack_user(user))
    except BroadcastBotError as exc:
        flows.tell(client, user_id=user, channel_id=str(event["channel"]), text=str(exc))
        return
    try:
        client.reactions_add(
            channel=event["channel"], timestamp=event["ts"], name="white_check_mark"
        )
    except SlackApiError as exc:
        log.info("could not mark reply as sent: %s", exc.response.get("error"))
