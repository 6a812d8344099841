"""WhatsApp webhook signatures and payloads (Meta and Kapso formats) as frozen dataclasses."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)


# --- signatures --------------------------------------------------------------------------------


def sign(raw: bytes, secret: str) -> str:
    """The hex HMAC-SHA256 of a raw body (what both Meta and Kapso send)."""
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def _matches(raw: bytes, header: str | None, secret: str | None, *, prefix_required: bool) -> bool:
    if not header or not secret:
        return False
    value = header.strip()
    if value.lower().startswith("sha256="):
        value = value[7:]
    elif prefix_required:
        return False
    return hmac.compare_digest(value.lower().encode(), sign(raw, secret).encode())


def verify_meta_signature(raw: bytes, header: str | None, secret: str | None) -> bool:
    """Check `X-Hub-Signature-256: sha256=<hex>` against the app secret, in constant time."""
    return _matches(raw, header, secret, prefix_required=True)


def verify_kapso_signature(raw: bytes, header: str | None, secret: str | None) -> bool:
    """Check Kapso's `X-Webhook-Signature: <hex>` (an optional `sha256=` prefix is tolerated)."""
    return _matches(raw, header, secret, prefix_required=False)


# --- typed events ------------------------------------------------------------------------------


class MessageStatus(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: object) -> MessageStatus:
        try:
            return cls(str(value).lower())
        except ValueError:
            log.warning("unknown WhatsApp message status %r", value)
            return cls.UNKNOWN


@dataclass(frozen=True)
class WebhookError:
    code: int | None
    title: str | None
    details: str | None


@dataclass(frozen=True)
class StatusUpdate:
    wamid: str
    status: MessageStatus
    timestamp: datetime
    recipient_id: str | None
    callback_data: str | None
    errors: tuple[WebhookError, ...]
    phone_number_id: str | None


@dataclass(frozen=True)
class InboundMessage:
    wamid: str
    from_wa_id: str
    profile_name: str | None
    timestamp: datetime
    type: str
    text: str | None
    button_payload: str | None
    button_text: str | None
    interactive_id: str | None
    interactive_title: str | None
    context_id: str | None
    phone_number_id: str | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def body(self) -> str | None:
        """What the person wrote or tapped, as text (None for media and the like)."""
        return self.text or self.button_text or self.interactive_title or self.button_payload


@dataclass(frozen=True)
class TemplateStatusUpdate:
    business_account_id: str | None
    template_id: str | None
    name: str | None
    language: str | None
    status: str
    reason: str | None


@dataclass(frozen=True)
class UserPreferenceUpdate:
    wa_id: str
    category: str
    opted_out: bool
    detail: str | None
    timestamp: datetime
    phone_number_id: str | None


WebhookEvent = StatusUpdate | InboundMessage | TemplateStatusUpdate | UserPreferenceUpdate


@dataclass(frozen=True)
class Parsed:
    """Everything understood in one body, plus what was skipped (for the logs)."""

    events: tuple[WebhookEvent, ...]
    ignored: tuple[str, ...] = ()


# --- helpers -----------------------------------------------------------------------------------


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def parse_timestamp(value: object) -> datetime:
    """Unix seconds (Meta) or ISO 8601 (Kapso); `now` when missing or unreadable."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        try:
            return datetime.fromtimestamp(int(value), UTC)
        except (OverflowError, OSError, ValueError):
            pass
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def _errors(value: object) -> tuple[WebhookError, ...]:
    out = []
    for item in _list(value):
        err = _dict(item)
        out.append(
            WebhookError(
                code=_int(err.get("code")),
                title=_str(err.get("title")) or _str(err.get("message")),
                details=_str(_dict(err.get("error_data")).get("details"))
                or _str(err.get("message")),
            )
        )
    return tuple(out)


def _status(raw: dict[str, Any], phone_number_id: str | None) -> StatusUpdate | None:
    wamid = _str(raw.get("id"))
    if wamid is None:
        return None
    return StatusUpdate(
        wamid=wamid,
        status=MessageStatus.parse(raw.get("status")),
        timestamp=parse_timestamp(raw.get("timestamp")),
        recipient_id=_str(raw.get("recipient_id")),
        callback_data=_str(raw.get("biz_opaque_callback_data")),
        errors=_errors(raw.get("errors")),
        phone_number_id=phone_number_id,
    )


def _message(
    raw: dict[str, Any],
    *,
    from_wa_id: str | None,
    profile_name: str | None,
    phone_number_id: str | None,
) -> InboundMessage | None:
    wamid = _str(raw.get("id"))
    sender = _str(raw.get("from")) or from_wa_id
    if wamid is None or sender is None:
        return None
    kind = _str(raw.get("type")) or "unknown"
    button = _dict(raw.get("button"))
    interactive = _dict(raw.get("interactive"))
    reply = _dict(interactive.get("button_reply")) or _dict(interactive.get("list_reply"))
    return InboundMessage(
        wamid=wamid,
        from_wa_id=sender.lstrip("+"),
        profile_name=profile_name,
        timestamp=parse_timestamp(raw.get("timestamp")),
        type=kind,
        text=_str(_dict(raw.get("text")).get("body")),
        button_payload=_str(button.get("payload")),
        button_text=_str(button.get("text")),
        interactive_id=_str(reply.get("id")),
        interactive_title=_str(reply.get("title")),
        context_id=_str(_dict(raw.get("context")).get("id")),
        phone_number_id=phone_number_id,
        raw=raw,
    )


# --- Meta format -------------------------------------------------------------------------------


def parse_meta(payload: object) -> Parsed:
    """A Meta webhook body (`object: whatsapp_business_account`) into events."""
    body = _dict(payload)
    events: list[WebhookEvent] = []
    ignored: list[str] = []
    if body.get("object") not in (None, "whatsapp_business_account"):
        return Parsed((), (f"object {body.get('object')!r}",))
    for entry in _list(body.get("entry")):
        entry = _dict(entry)
        waba = _str(entry.get("id"))
        for change in _list(entry.get("changes")):
            change = _dict(change)
            name = _str(change.get("field")) or "?"
            value = _dict(change.get("value"))
            if name == "messages":
                events += _meta_messages(value, ignored)
            elif name == "message_template_status_update":
                events.append(_meta_template(waba, value))
            elif name == "user_preferences":
                events += _meta_preferences(value)
            else:
                ignored.append(f"field {name}")
    return Parsed(tuple(events), tuple(ignored))


def _meta_messages(value: dict[str, Any], ignored: list[str]) -> list[WebhookEvent]:
    phone_number_id = _str(_dict(value.get("metadata")).get("phone_number_id"))
    out: list[WebhookEvent] = []
    for raw in _list(value.get("statuses")):
        status = _status(_dict(raw), phone_number_id)
        if status is None:
            ignored.append("status without id")
        else:
            out.append(status)
    names = {
        _str(_dict(c).get("wa_id")): _str(_dict(_dict(c).get("profile")).get("name"))
        for c in _list(value.get("contacts"))
    }
    for raw in _list(value.get("messages")):
        raw = _dict(raw)
        sender = _str(raw.get("from"))
        message = _message(
            raw,
            from_wa_id=sender,
            profile_name=names.get(sender) or next(iter(names.values()), None),
            phone_number_id=phone_number_id,
        )
        if message is None:
            ignored.append("message without id or sender")
        else:
            out.append(message)
    return out


def _meta_template(waba: str | None, value: dict[str, Any]) -> TemplateStatusUpdate:
    reason = _str(value.get("reason"))
    return TemplateStatusUpdate(
        business_account_id=waba,
        template_id=_str(value.get("message_template_id")),
        name=_str(value.get("message_template_name")),
        language=_str(value.get("message_template_language")),
        status=(_str(value.get("event")) or "UNKNOWN").upper(),
        reason=None if reason in (None, "NONE") else reason,
    )


def _meta_preferences(value: dict[str, Any]) -> list[WebhookEvent]:
    phone_number_id = _str(_dict(value.get("metadata")).get("phone_number_id"))
    out: list[WebhookEvent] = []
    for raw in _list(value.get("user_preferences")):
        raw = _dict(raw)
        wa_id = _str(raw.get("wa_id"))
        choice = (_str(raw.get("value")) or "").lower()
        if wa_id is None or choice not in ("stop", "resume"):
            log.warning("unreadable user preference update %r", raw)
            continue
        out.append(
            UserPreferenceUpdate(
                wa_id=wa_id,
                category=_str(raw.get("category")) or "marketing_messages",
                opted_out=choice == "stop",
                detail=_str(raw.get("detail")),
                timestamp=parse_timestamp(raw.get("timestamp")),
                phone_number_id=phone_number_id,
            )
        )
    return out


# --- Kapso format ------------------------------------------------------------------------------

KAPSO_STATUS_EVENTS = {
    "whatsapp.message.sent": MessageStatus.SENT,
    "whatsapp.message.delivered": MessageStatus.DELIVERED,
    "whatsapp.message.read": MessageStatus.READ,
    "whatsapp.message.failed": MessageStatus.FAILED,
}


def is_meta_payload(payload: object) -> bool:
    """Kapso's `meta` webhook kind forwards Meta's body unchanged."""
    body = _dict(payload)
    return body.get("object") == "whatsapp_business_account" or "entry" in body


def parse_kapso(payload: object, event: str | None) -> Parsed:
    """A Kapso v2 body (one event, a batch, or a forwarded Meta body) into events."""
    if is_meta_payload(payload):
        return parse_meta(payload)
    body = _dict(payload)
    items = _list(body.get("data")) if body.get("batch") is True else [body]
    events: list[WebhookEvent] = []
    ignored: list[str] = []
    for item in items:
        item = _dict(item)
        name = event or _str(item.get("event")) or _str(body.get("event")) or ""
        parsed = _kapso_event(name, _dict(item.get("data")) if "data" in item else item)
        if parsed is None:
            ignored.append(f"event {name or '?'}")
        else:
            events.append(parsed)
    return Parsed(tuple(events), tuple(ignored))


def _kapso_event(name: str, item: dict[str, Any]) -> WebhookEvent | None:
    message = _dict(item.get("message"))
    conversation = _dict(item.get("conversation"))
    phone_number_id = _str(item.get("phone_number_id")) or _str(conversation.get("phone_number_id"))
    if name in KAPSO_STATUS_EVENTS:
        return _kapso_status(KAPSO_STATUS_EVENTS[name], message, conversation, phone_number_id)
    if name == "whatsapp.message.received":
        phone = _str(conversation.get("phone_number"))
        return _message(
            message,
            from_wa_id=phone.lstrip("+") if phone else None,
            profile_name=_str(_dict(conversation.get("kapso")).get("contact_name")),
            phone_number_id=phone_number_id,
        )
    if name == "whatsapp.contact.marketing_preference_changed":
        contact = _dict(item.get("contact"))
        pref = _dict(item.get("marketing_preference"))
        wa_id = _str(contact.get("wa_id"))
        status = (_str(pref.get("status")) or "").lower()
        if wa_id is None or status not in ("stopped", "resumed"):
            return None
        return UserPreferenceUpdate(
            wa_id=wa_id,
            category="marketing_messages",
            opted_out=status == "stopped",
            detail=_str(pref.get("detail")),
            timestamp=parse_timestamp(pref.get("occurred_at")),
            phone_number_id=phone_number_id,
        )
    return None


def _kapso_status(
    status: MessageStatus,
    message: dict[str, Any],
    conversation: dict[str, Any],
    phone_number_id: str | None,
) -> StatusUpdate | None:
    wamid = _str(message.get("id"))
    if wamid is None:
        return None
    history = [_dict(s) for s in _list(_dict(message.get("kapso")).get("statuses"))]
    latest: dict[str, Any] = next(
        (s for s in reversed(history) if s.get("status") == status.value), {}
    )
    phone = _str(conversation.get("phone_number"))
    callback = next(
        (
            _str(s.get("biz_opaque_callback_data"))
            for s in history
            if s.get("biz_opaque_callback_data")
        ),
        None,
    )
    return StatusUpdate(
        wamid=wamid,
        status=status,
        timestamp=parse_timestamp(latest.get("timestamp") or message.get("timestamp")),
        recipient_id=_str(latest.get("recipient_id")) or (phone.lstrip("+") if phone else None),
        callback_data=callback,
        errors=_errors(latest.get("errors")),
        phone_number_id=phone_number_id,
    )
