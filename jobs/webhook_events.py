"""What a stored webhook body does: statuses, replies, opt-outs, template changes, agents."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from broadcasts import contacts, service
from broadcasts.callback import CallbackRef, decode
from broadcasts.configs import config_for_phone_number_id
from broadcasts.conversations import (
    add_message,
    contact_for_sender,
    message_exists,
    open_conversation,
)
from broadcasts.enums import AgentKind, BroadcastStatus, Direction, TemplateStatus
from broadcasts.lifecycle import ACTIVE
from broadcasts.models import (
    Agent,
    Broadcast,
    Message,
    Recipient,
    Template,
    WhatsAppConfig,
    utcnow,
)
from broadcasts.opt_outs import keyword_intent
from broadcasts.recipient_status import (
    CounterDeltas,
    apply_delivery_status,
    mark_responded,
    retry_after_async_failure,
)
from broadcasts.replies import attribute_reply
from broadcasts.sending import MAX_ATTEMPTS, backoff
from broadcasts.templates import set_status
from jobs import agents, broadcast_events
from jobs.broadcast_events import EventKind
from jobs.delivery_retries import enqueue_delivery
from jobs.runtime import Runtime
from jobs.sender import enqueue_lanes
from kapso.errors import ErrorAction, classify
from kapso.webhooks import (
    InboundMessage,
    MessageStatus,
    Parsed,
    StatusUpdate,
    TemplateStatusUpdate,
    UserPreferenceUpdate,
    parse_kapso,
    parse_meta,
)

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 500
MESSAGE_RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3}


class StoredBody(Protocol):
    id: int
    source: str
    event_type: str | None
    body: str


def parse_row(row: StoredBody) -> Parsed:
    payload = json.loads(row.body)
    if row.source == "kapso":
        return parse_kapso(payload, row.event_type if row.event_type != "batch" else None)
    return parse_meta(payload)


class Processor:
    """Applies parsed events inside the caller's transaction; side effects wait for the commit."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self._after: list[Callable[[], None]] = []

    def discard(self) -> None:
        self._after.clear()

    def after_commit(self) -> None:
        actions, self._after = self._after, []
        for action in actions:
            try:
                action()
            except Exception:  # Redis down: sweepers pick the work up from the database
                log.warning("post-commit action failed", exc_info=True)

    def handle(self, session: Session, rows: Sequence[Any]) -> None:
        """Apply every event of `rows` (each with id, source, event_type and body)."""
        deltas = CounterDeltas()
        parsed: list[Any] = []
        for row in rows:
            result = parse_row(row)
            problems = [i for i in result.ignored if i.startswith("error ")]
            if problems:  # WhatsApp reporting a problem with the number or the app itself
                log.warning("inbox %s: WhatsApp reported %s", row.id, "; ".join(problems))
            if len(problems) < len(result.ignored):
                log.info("inbox %s: not acted on: %s", row.id, ", ".join(result.ignored))
            parsed.extend(result.events)
        statuses = [e for e in parsed if isinstance(e, StatusUpdate)]
        if statuses:
            self._statuses(session, statuses, deltas)
        for event in parsed:
            if isinstance(event, InboundMessage):
                self._inbound_isolated(session, event, deltas)
            elif isinstance(event, TemplateStatusUpdate):
                self._template(session, event)
            elif isinstance(event, UserPreferenceUpdate):
                self._preference(session, event)
        for broadcast_id in deltas.broadcast_ids():  # the Slack card shows the new counts
            self._after.append(
                partial(
                    broadcast_events.publish, self.runtime.redis, broadcast_id, EventKind.PROGRESS
                )
            )
        deltas.flush(session)

    # -- delivery statuses -----------------------------------------------------------------

    def _statuses(
        self, session: Session, statuses: list[StatusUpdate], deltas: CounterDeltas
    ) -> None:
        by_wamid = {
            r.wamid: r for r in _lock_recipients(session, wamids={s.wamid for s in statuses})
        }
        refs: dict[str, CallbackRef] = {}
        for s in statuses:
            ref = decode(s.callback_data)
            if s.wamid not in by_wamid and ref is not None:
                refs[s.wamid] = ref
        wanted = {r.recipient_id for r in refs.values() if r.recipient_id is not None}
        by_id = {r.id: r for r in _lock_recipients(session, ids=wanted)} if wanted else {}
        trusted = _trusted_broadcasts(session, {r.broadcast_id for r in by_id.values()})
        unknown: list[StatusUpdate] = []
        for s in statuses:
            if s.status is MessageStatus.UNKNOWN:
                continue
            recipient = by_wamid.get(s.wamid)
            if recipient is None and s.wamid in refs:
                ref = refs[s.wamid]
                candidate = by_id.get(ref.recipient_id) if ref.recipient_id is not None else None
                if candidate is not None and _callback_proves(candidate, ref, s.wamid, trusted):
                    recipient = candidate
                    by_wamid[s.wamid] = candidate  # the lost response's wamid, reconciled
                elif candidate is not None:
                    log.warning(
                        "status %s names recipient %s of broadcast %s, which is not waiting "
                        "for it (never claimed, a draft, or an earlier send); ignored",
                        s.wamid,
                        candidate.id,
                        ref.broadcast_id,
                    )
                    continue
                elif ref.recipient_id is None:
                    continue  # a test send: outside the broadcast's metrics
            if recipient is None:
                unknown.append(s)
                continue
            if s.recipient_user_id and recipient.user_id is None:
                recipient.user_id = s.recipient_user_id
            error = s.errors[0] if s.errors else None
            if s.status is MessageStatus.FAILED and self._failed_send(
                session, recipient, s, deltas
            ):
                continue
            apply_delivery_status(
                session,
                recipient,
                s.status.value,
                at=s.timestamp,
                wamid=s.wamid,
                wa_id=s.recipient_id,
                error_code=error.code if error else None,
                error_title=error.title if error else None,
                error_detail=error.details if error else None,
                deltas=deltas,
            )
            if error is not None and classify(error.code, None).opt_out:
                contacts.set_opt_out(
                    session,
                    recipient.phone,
                    True,
                    f"WhatsApp error {error.code}: {classify(error.code, None).summary}",
                    from_whatsapp=True,
                )
        if unknown:
            self._other_statuses(session, unknown)

    def _failed_send(
        self, session: Session, recipient: Recipient, s: StatusUpdate, deltas: CounterDeltas
    ) -> bool:
        """An asynchronous failure, as the error table says: a retryable code puts the same row
        back for a bounded fresh send; a broadcast-level code also pauses (or fails) the
        broadcast. True when handled here; False: the recipient fails as usual."""
        error = s.errors[0] if s.errors else None
        if error is None or recipient.wamid != s.wamid:
            return False
        c = classify(error.code, None)
        if not (c.retryable or c.stops_broadcast):
            return False
        broadcast = session.get(Broadcast, recipient.broadcast_id)
        if broadcast is None or broadcast.status not in ACTIVE:
            return False
        if recipient.attempts >= MAX_ATTEMPTS:
            return False
        delay = max(c.delay_seconds or 0.0, backoff(recipient.attempts))
        if not retry_after_async_failure(
            session,
            recipient,
            wamid=s.wamid,
            code=error.code,
            title=error.title,
            detail=error.details,
            retry_at=utcnow() + timedelta(seconds=delay),
            deltas=deltas,
        ):
            return False
        log.info(
            "recipient %s: asynchronous failure %s (%s); retrying in %.0fs",
            recipient.id,
            error.code,
            c.action.value,
            delay,
        )
        if c.stops_broadcast and broadcast.status == BroadcastStatus.SENDING:
            reason = (
                f"WhatsApp error {error.code} on a delivered send: {c.summary}. "
                f"{error.title or ''} {error.details or ''}".strip()
            )
            kind = service.stop_for_error(
                session, broadcast, reason, fail=c.action is ErrorAction.FAIL_BROADCAST
            )
            if kind:
                self._after.append(
                    partial(
                        broadcast_events.publish,
                        self.runtime.redis,
                        broadcast.id,
                        kind,
                        reason=reason,
                    )
                )
        elif broadcast.status == BroadcastStatus.SENDING:
            self._after.append(partial(enqueue_lanes, self.runtime, broadcast.id, 1, delay=delay))
        return True

    def _other_statuses(self, session: Session, statuses: list[StatusUpdate]) -> None:
        """Statuses of agent replies move their Message forward; others are not ours."""
        messages = {
            m.wamid: m
            for m in session.scalars(
                select(Message).where(Message.wamid.in_({s.wamid for s in statuses}))
            )
        }
        for s in statuses:
            message = messages.get(s.wamid)
            if message is None:
                log.debug("status %s for message %s we did not send", s.status, s.wamid)
                continue
            if s.status is MessageStatus.FAILED:
                message.status = "failed"
            elif message.status != "failed" and MESSAGE_RANK.get(s.status.value, 0) > (
                MESSAGE_RANK.get(message.status or "accepted", 0)
            ):
                message.status = s.status.value

    # -- inbound messages ------------------------------------------------------------------

    def _inbound(self, session: Session, m: InboundMessage, deltas: CounterDeltas) -> None:
        if message_exists(session, m.wamid):
            return  # delivered twice (e.g. by Meta and by Kapso)
        config = config_for_phone_number_id(session, m.phone_number_id or "")
        if config is None:
            log.warning(
                "inbound message %s for unknown phone number id %s", m.wamid, m.phone_number_id
            )
            return
        recipient = attribute_reply(
            session,
            config_id=config.id,
            wa_id=m.from_wa_id,
            user_id=m.user_id,
            context_id=m.context_id,
            at=m.timestamp,
            window_hours=self.settings.reply_attribution_hours,
        )
        broadcast = session.get(Broadcast, recipient.broadcast_id) if recipient else None
        contact = contact_for_sender(
            session,
            wa_id=m.from_wa_id,
            user_id=m.user_id,
            username=m.username,
            profile_name=m.profile_name,
            at=m.timestamp,
            phone_hint=recipient.phone if recipient else None,
        )
        intent = (
            keyword_intent(m.body, self.settings.opt_out_words, self.settings.opt_in_words)
            if m.is_reply  # a reaction, notice, revoke or edit says nothing about opting out
            else None
        )
        if recipient is not None:
            if recipient.contact_id is None:
                recipient.contact_id = contact.id
            if m.user_id and recipient.user_id is None:
                recipient.user_id = m.user_id
            if m.is_reply:  # a reaction, system notice, revoke or edit is not an answer
                opt_out = intent is True  # a STOP reply is an opt-out, not a response
                mark_responded(session, recipient, at=m.timestamp, deltas=deltas, opt_out=opt_out)
        agent_id = broadcast.agent_id if broadcast else config.primary_agent_id
        conversation, is_new = open_conversation(
            session,
            config_id=config.id,
            contact_id=contact.id,
            at=m.timestamp,
            inactivity_hours=self.settings.conversation_inactivity_hours,
            broadcast_id=broadcast.id if broadcast else None,
            agent_id=agent_id,
        )
        message = add_message(
            session,
            conversation,
            direction=Direction.INBOUND,
            wamid=m.wamid,
            type=m.type,
            text=m.body,
            at=m.timestamp,
            payload=m.raw,
            broadcast_id=broadcast.id if broadcast else None,
            recipient_id=recipient.id if recipient else None,
        )
        if intent is not None:
            contacts.apply_opt_out(contact, intent, f"replied '{m.body}'")
        agent = session.get(Agent, agent_id) if agent_id else None
        if agent is None:
            log.warning("no agent for inbound message %s on '%s'", m.wamid, config.name)
            return
        context = agents.reply_context(
            session,
            broadcast,
            recipient,
            config_id=config.id,
            wa_id=m.from_wa_id,
            context_id=m.context_id,
            at=m.timestamp,
            window_hours=self.settings.reply_attribution_hours,
        )
        payload = agents.agent_payload(
            idempotency_key=agents.idempotency_key_for(agent.id, m.wamid),
            config=config,
            message=message,
            raw_message=m.raw,
            contact=contact,
            conversation=conversation,
            is_new=is_new,
            context=context,
        )
        delivery = agents.create_delivery(session, agent, message, payload)
        if delivery is not None:
            kind = AgentKind(agent.kind)
            self._after.append(partial(enqueue_delivery, self.runtime.redis, delivery.id, kind))

    def _inbound_isolated(self, session: Session, m: InboundMessage, deltas: CounterDeltas) -> None:
        """One message that cannot be applied is logged and left out (in a savepoint); the
        rest of its body still is. A database outage still fails the body (it is retried)."""
        mine = CounterDeltas()
        try:
            with session.begin_nested():
                self._inbound(session, m, mine)
        except OperationalError:
            raise
        except Exception:
            log.exception("inbound message %s from %s could not be applied", m.wamid, m.sender)
            return
        deltas.merge(mine)

    # -- marketing preferences and templates -----------------------------------------------

    def _preference(self, session: Session, update: UserPreferenceUpdate) -> None:
        reason = f"WhatsApp marketing preference: {update.detail or 'stop'}"
        contacts.set_opt_out(
            session, f"+{update.wa_id}", update.opted_out, reason, from_whatsapp=True
        )

    def _template(self, session: Session, update: TemplateStatusUpdate) -> None:
        query = select(Template).join(WhatsAppConfig, WhatsAppConfig.id == Template.config_id)
        if update.business_account_id:
            query = query.where(WhatsAppConfig.business_account_id == update.business_account_id)
        templates = [
            t
            for t in session.scalars(query)
            if (update.template_id and t.external_id == update.template_id)
            or (
                t.name == update.name and (update.language is None or t.language == update.language)
            )
        ]
        if not templates:
            log.info("status %s for template %s we do not know", update.status, update.name)
        status = TemplateStatus.parse(update.status)
        for template in templates:
            if not set_status(session, template, update.status[:32], update.reason):
                continue
            if status in (TemplateStatus.PAUSED, TemplateStatus.DISABLED):
                self._stop_broadcasts(session, template, status, update.reason)

    def _stop_broadcasts(
        self, session: Session, template: Template, status: TemplateStatus, why: str | None
    ) -> None:
        sending = session.scalars(
            select(Broadcast).where(
                Broadcast.template_id == template.id, Broadcast.status == BroadcastStatus.SENDING
            )
        )
        reason = f"Template '{template.name}' ({template.language}) was {status.value.lower()}"
        reason += f" by WhatsApp: {why}." if why else " by WhatsApp."
        for broadcast in list(sending):
            kind = service.stop_for_error(
                session, broadcast, reason, fail=status is TemplateStatus.DISABLED
            )
            if kind is None:
                continue
            log.warning("broadcast %s %s: %s", broadcast.id, kind, reason)
            self._after.append(
                partial(
                    broadcast_events.publish, self.runtime.redis, broadcast.id, kind, reason=reason
                )
            )


def _trusted_broadcasts(session: Session, ids: set[str]) -> set[str]:
    """Broadcasts whose callback data may reconcile a send: ones that have sent something."""
    if not ids:
        return set()
    live = (BroadcastStatus.SENDING, BroadcastStatus.PAUSED, BroadcastStatus.COMPLETED)
    return set(
        session.scalars(
            select(Broadcast.id).where(Broadcast.id.in_(ids), Broadcast.status.in_(live))
        )
    )


def _callback_proves(recipient: Recipient, ref: CallbackRef, wamid: str, trusted: set[str]) -> bool:
    """Callback data is trusted only for a recipient of that broadcast whose row was actually
    claimed for sending, in a broadcast that has sent, and not for a wamid it already replaced."""
    return (
        recipient.broadcast_id == ref.broadcast_id
        and recipient.broadcast_id in trusted
        and recipient.attempts > 0
        and wamid not in (recipient.wamid_history or [])
    )


def _lock_recipients(
    session: Session, *, wamids: set[str] | None = None, ids: set[int] | None = None
) -> list[Recipient]:
    """Load and lock recipients in id order (so concurrent workers cannot deadlock each other)."""
    keys: list[Any] = sorted(wamids or ids or [])
    column: Any = Recipient.wamid if wamids is not None else Recipient.id
    found: list[Recipient] = []
    for start in range(0, len(keys), LOOKUP_CHUNK):
        part = keys[start : start + LOOKUP_CHUNK]
        found += session.scalars(
            select(Recipient).where(column.in_(part)).order_by(Recipient.id).with_for_update()
        )
    return found
