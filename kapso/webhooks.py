"""WhatsApp webhook signatures and payloads (Meta and Kapso formats) as frozen dataclasses."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    recipient_user_id: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    wamid: str
    from_wa_id: str | None  # the sender's phone number digits (absent for username users)
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
    user_id: str | None = None  # business-scoped user id (BSUID)
    username: str | None = None

    @property
    def body(self) -> str | None:
        """What the person wrote or tapped, as text (a caption for media; None otherwise)."""
        if self.text or self.button_text or self.interactive_title or self.button_payload:
            return self.text or self.button_text or self.interactive_title or self.button_payload
        content = message_content(self.raw)  # a caption, an edit's new text, a flow's body
        return content.get("text") or content.get("caption")

    @property
    def is_reply(self) -> bool:
        """Whether the customer answered (reactions, system notices, revokes and edits do not)."""
        return self.type not in NOT_REPLIES

    @property
    def sender(self) -> str:
        """The best identifier for logs: the number, else the user id."""
        return self.from_wa_id or self.user_id or "?"


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


# --- sanitising at the edge -------------------------------------------------------------------

# Kinds that are not a customer's answer: delivered as what they are, never counted as `responded`.
NOT_REPLIES = frozenset({"reaction", "system", "revoke", "edit", "deleted", "ephemeral"})
# WhatsApp started in 2009; a clock a day ahead is tolerated, anything further is a bad value.
EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
_WA_ID = re.compile(r"\d{6,15}")
# Meta: a two-letter country code, a period, up to 128 alphanumerics (`ENT.` for a parent BSUID).
_BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")


def clean_text(value: str) -> str:
    """Valid UTF-8 text: surrogate pairs joined, lone surrogates and NULs replaced (PostgreSQL
    refuses both), so an oddly escaped reply is kept rather than lost to an encoding error."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value.replace("\x00", "\ufffd")


def clean(value: Any) -> Any:
    """`clean_text` over every string of a decoded JSON body (keys included)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def wa_id_or_none(value: object) -> str | None:
    """A phone number's digits as WhatsApp sends them (`+` tolerated), or None if it is not one."""
    text = _str(value)
    if text is None:
        return None
    digits = text[1:] if text.startswith("+") else text
    return digits if _WA_ID.fullmatch(digits) else None


def user_id_or_none(value: object) -> str | None:
    """A business-scoped user id (e.g. `US.13491208655302741918`), or None if it is not one."""
    text = _str(value)
    return text if text is not None and _BSUID.fullmatch(text) else None


# --- helpers -----------------------------------------------------------------------------------


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str | None:
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value).strip()
    return text or None


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _float(value: object) -> float | None:
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_timestamp(value: object) -> datetime:
    """Unix seconds (Meta) or ISO 8601 (Kapso), kept only inside a sane window (WhatsApp's
    start to a day ahead); a missing, unreadable or absurd value becomes `now`, logged."""
    now = datetime.now(UTC)
    if value is None or value == "":
        return now
    parsed: datetime | None = None
    try:
        number = _float(value) if not isinstance(value, bool) else None
        if number is not None:
            parsed = datetime.fromtimestamp(number, UTC)
        elif isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            parsed = parsed.astimezone(UTC)
    except (OverflowError, OSError, ValueError):
        parsed = None
    if parsed is None or not EARLIEST <= parsed <= now + FUTURE_SLACK:
        log.warning("webhook timestamp %.60r is unreadable or out of range; using now", value)
        return now
    return parsed


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
        recipient_id=wa_id_or_none(raw.get("recipient_id")),
        callback_data=_str(raw.get("biz_opaque_callback_data")),
        errors=_errors(raw.get("errors")),
        phone_number_id=phone_number_id,
        recipient_user_id=user_id_or_none(raw.get("recipient_user_id")),
    )


def _message(
    raw: dict[str, Any],
    *,
    from_wa_id: str | None,
    profile_name: str | None,
    phone_number_id: str | None,
    user_id: str | None = None,
    username: str | None = None,
) -> InboundMessage | str:
    """The typed message, or why it was left out."""
    wamid = _str(raw.get("id"))
    if wamid is None:
        return "message without id"
    given_from = raw.get("from")
    sender = wa_id_or_none(given_from) if given_from is not None else from_wa_id
    user = user_id_or_none(raw.get("from_user_id")) or user_id
    if sender is None and user is None:
        shown = given_from if given_from is not None else raw.get("from_user_id")
        return f"message {wamid[:80]} from an invalid or missing sender {str(shown)[:40]!r}"
    kind = _str(raw.get("type")) or "unknown"
    button = _dict(raw.get("button"))
    interactive = _dict(raw.get("interactive"))
    reply = _dict(interactive.get("button_reply")) or _dict(interactive.get("list_reply"))
    return InboundMessage(
        wamid=wamid,
        from_wa_id=sender,
        profile_name=profile_name,
        timestamp=parse_timestamp(raw.get("timestamp")),
        type=kind[:32],
        text=_str(_dict(raw.get("text")).get("body")),
        button_payload=_str(button.get("payload")),
        button_text=_str(button.get("text")),
        interactive_id=_str(reply.get("id")),
        interactive_title=_str(reply.get("title")),
        context_id=_str(_dict(raw.get("context")).get("id")),
        phone_number_id=phone_number_id,
        raw=raw,
        user_id=user,
        username=username,
    )


# --- the typed content an agent receives ---------------------------------------------------------

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")


def message_content(raw: dict[str, Any]) -> dict[str, Any]:
    """Every inbound message type in one documented shape (docs/webhooks-and-agents.md).

    Keys: `kind`; `text` (text body, or a button/list/flow reply's title); `caption`; `media`
    (id, mime_type, sha256, filename, voice, animated); `location`; `contacts`; `reaction`
    (emoji — None when removed — and the message_id it targets); `order` (catalog_id, text,
    items); `interactive` (type, id, title, description, response_json); `button` (payload,
    text); `system` (type, body, new wa_id / user id); `referral`; `target_message_id` (the
    message a revoke or edit is about); `edit` (the new content); `errors` (unsupported types).
    """
    raw = _dict(raw)
    kind = _str(raw.get("type")) or "unknown"
    out: dict[str, Any] = {"kind": kind, "text": _str(_dict(raw.get("text")).get("body"))}
    if kind in MEDIA_TYPES:
        media = _dict(raw.get(kind))
        out["caption"] = _str(media.get("caption"))
        out["media"] = {
            "id": _str(media.get("id")),
            "mime_type": _str(media.get("mime_type")),
            "sha256": _str(media.get("sha256")),
            "filename": _str(media.get("filename")),
            "voice": media.get("voice") is True,
            "animated": media.get("animated") is True,
            "url": _str(media.get("url")) or _str(_dict(raw.get("kapso")).get("media_url")),
        }
    elif kind == "location":
        place = _dict(raw.get("location"))
        out["location"] = {
            "latitude": _float(place.get("latitude")),
            "longitude": _float(place.get("longitude")),
            "name": _str(place.get("name")),
            "address": _str(place.get("address")),
            "url": _str(place.get("url")),
        }
    elif kind == "contacts":
        out["contacts"] = [_shared_contact(_dict(c)) for c in _list(raw.get("contacts"))]
    elif kind == "reaction":
        reaction = _dict(raw.get("reaction"))
        out["reaction"] = {
            "emoji": _str(reaction.get("emoji")),
            "message_id": _str(reaction.get("message_id")),
        }
    elif kind == "order":
        order = _dict(raw.get("order"))
        out["order"] = {
            "catalog_id": _str(order.get("catalog_id")),
            "text": _str(order.get("text")),
            "items": [
                {
                    "product_retailer_id": _str(_dict(i).get("product_retailer_id")),
                    "quantity": _float(_dict(i).get("quantity")),
                    "item_price": _float(_dict(i).get("item_price")),
                    "currency": _str(_dict(i).get("currency")),
                }
                for i in _list(order.get("product_items"))
            ],
        }
    elif kind == "interactive":
        interactive = _dict(raw.get("interactive"))
        sub = _str(interactive.get("type")) or "unknown"
        part = _dict(interactive.get(sub))
        out["interactive"] = {
            "type": sub,
            "id": _str(part.get("id")),
            "title": _str(part.get("title")),
            "description": _str(part.get("description")),
            "response_json": _str(part.get("response_json")),
        }
        out["text"] = out["interactive"]["title"] or _str(part.get("body"))
    elif kind == "button":
        button = _dict(raw.get("button"))
        out["button"] = {"payload": _str(button.get("payload")), "text": _str(button.get("text"))}
        out["text"] = out["button"]["text"] or out["button"]["payload"]
    elif kind == "system":
        system = _dict(raw.get("system"))
        out["system"] = {
            "type": _str(system.get("type")),
            "body": _str(system.get("body")),
            "new_wa_id": wa_id_or_none(system.get("wa_id") or system.get("new_wa_id")),
            "new_user_id": user_id_or_none(system.get("user_id")),
        }
    elif kind in ("revoke", "edit"):
        part = _dict(raw.get(kind))
        target = _str(part.get("original_message_id")) or _str(part.get("message_id"))
        out["target_message_id"] = target or _str(_dict(raw.get("context")).get("id"))
        if kind == "edit":
            out["edit"] = message_content(_dict(part.get("message")))
            out["text"] = out["edit"].get("text")
    if raw.get("referral"):
        referral = _dict(raw.get("referral"))
        out["referral"] = {
            k: _str(referral.get(k)) for k in ("source_url", "source_type", "source_id", "headline")
        }
    if raw.get("errors"):
        out["errors"] = [
            {"code": e.code, "title": e.title, "details": e.details}
            for e in _errors(raw.get("errors"))
        ]
    return out


def _shared_contact(card: dict[str, Any]) -> dict[str, Any]:
    name = _dict(card.get("name"))
    return {
        "name": _str(name.get("formatted_name"))
        or " ".join(p for p in (_str(name.get("first_name")), _str(name.get("last_name"))) if p)
        or None,
        "phones": [
            {"phone": _str(_dict(p).get("phone")), "wa_id": wa_id_or_none(_dict(p).get("wa_id"))}
            for p in _list(card.get("phones"))
        ],
        "emails": [_str(_dict(e).get("email")) for e in _list(card.get("emails"))],
        "org": _str(_dict(card.get("org")).get("company")),
    }


# --- Meta format -------------------------------------------------------------------------------


def parse_meta(payload: object) -> Parsed:
    """A Meta webhook body (`object: whatsapp_business_account`) into events.

    One unreadable item never costs the others: it is left out and named in `ignored`.
    """
    body = _dict(clean(payload))
    events: list[WebhookEvent] = []
    ignored: list[str] = []
    if body.get("object") not in (None, "whatsapp_business_account"):
        return Parsed((), (f"object {str(body.get('object'))[:40]!r}",))
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
                ignored.append(f"field {name[:60]}")
    return Parsed(tuple(events), tuple(ignored))


def _meta_messages(value: dict[str, Any], ignored: list[str]) -> list[WebhookEvent]:
    phone_number_id = _str(_dict(value.get("metadata")).get("phone_number_id"))
    out: list[WebhookEvent] = []
    for err in _errors(value.get("errors")):  # errors about the number, not about one message
        ignored.append(f"error {err.code}: {err.title or ''} {err.details or ''}".strip()[:200])
    for raw in _list(value.get("statuses")):
        try:
            status = _status(_dict(raw), phone_number_id)
        except Exception as exc:  # one bad status never costs the rest of the body
            log.warning("unreadable status left out: %s", exc)
            status = None
        if status is None:
            ignored.append("status without id")
        else:
            out.append(status)
    contacts = [_dict(c) for c in _list(value.get("contacts"))]
    for raw in _list(value.get("messages")):
        raw = _dict(raw)
        try:
            contact = _contact_for(contacts, raw)
            profile = _dict(contact.get("profile"))
            message = _message(
                raw,
                from_wa_id=wa_id_or_none(contact.get("wa_id")),
                profile_name=_str(profile.get("name")),
                phone_number_id=phone_number_id,
                user_id=user_id_or_none(contact.get("user_id")),
                username=_str(profile.get("username")) or _str(contact.get("username")),
            )
        except Exception as exc:
            log.warning("unreadable message left out: %s", exc)
            message = "unreadable message"
        if isinstance(message, str):
            ignored.append(message)
        else:
            out.append(message)
    return out


def _contact_for(contacts: list[dict[str, Any]], raw: dict[str, Any]) -> dict[str, Any]:
    """The `contacts[]` entry of a message's sender (by number or user id; else the only one)."""
    sender, user = _str(raw.get("from")), _str(raw.get("from_user_id"))
    for contact in contacts:
        if (sender and _str(contact.get("wa_id")) == sender) or (
            user and _str(contact.get("user_id")) == user
        ):
            return contact
    return contacts[0] if len(contacts) == 1 else {}


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
        wa_id = wa_id_or_none(raw.get("wa_id"))
        choice = (_str(raw.get("value")) or "").lower()
        if wa_id is None or choice not in ("stop", "resume"):
            log.warning("unreadable user preference update %.300r", raw)
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
    """Whether a body is in Meta's format (`object`, `entry`), as Kapso's `meta` webhook kind
    forwards it unchanged; whether it is a WhatsApp one is for `parse_meta` to say."""
    body = _dict(payload)
    return "object" in body or "entry" in body


def parse_kapso(payload: object, event: str | None) -> Parsed:
    """A Kapso v2 body (one event, a batch, or a forwarded Meta body) into events.

    The event type comes from the `X-Webhook-Event` header when there is one, else from the
    body (`event` / `type` on the item or the batch); a batch's header may say just `batch`.
    """
    if is_meta_payload(payload):
        return parse_meta(payload)
    body = _dict(clean(payload))
    is_batch = body.get("batch") is True or (
        isinstance(body.get("data"), list) and "message" not in body
    )
    items = _list(body.get("data")) if is_batch else [body]
    header = event if event and event != "batch" else None
    events: list[WebhookEvent] = []
    ignored: list[str] = []
    for item in items:
        item = _dict(item)
        name = (
            _kapso_name(item) or header or _str(body.get("event")) or _str(body.get("type")) or ""
        )[:80]
        try:
            parsed = _kapso_event(name, _dict(item.get("data")) if "data" in item else item)
        except Exception as exc:  # one bad item never costs the rest of the batch
            log.warning("unreadable Kapso %s event left out: %s", name or "?", exc)
            parsed = f"unreadable event {name or '?'}"
        if isinstance(parsed, str):
            ignored.append(parsed)
        elif parsed is None:
            ignored.append(f"event {name or '?'}")
        else:
            events.append(parsed)
    return Parsed(tuple(events), tuple(ignored))


def _kapso_name(item: dict[str, Any]) -> str | None:
    name = _str(item.get("event")) or _str(item.get("type"))
    return name if name and name.startswith("whatsapp.") else None


def _kapso_event(name: str, item: dict[str, Any]) -> WebhookEvent | str | None:
    message = _dict(item.get("message"))
    conversation = _dict(item.get("conversation"))
    phone_number_id = _str(item.get("phone_number_id")) or _str(conversation.get("phone_number_id"))
    if name in KAPSO_STATUS_EVENTS:
        return _kapso_status(KAPSO_STATUS_EVENTS[name], message, conversation, phone_number_id)
    if name == "whatsapp.message.received":
        contact = _dict(item.get("contact"))
        kapso = _dict(conversation.get("kapso"))
        return _message(
            message,
            from_wa_id=wa_id_or_none(conversation.get("phone_number"))
            or wa_id_or_none(contact.get("wa_id")),
            profile_name=_str(kapso.get("contact_name")) or _str(contact.get("profile_name")),
            phone_number_id=phone_number_id,
            user_id=user_id_or_none(conversation.get("user_id"))
            or user_id_or_none(conversation.get("business_scoped_user_id"))
            or user_id_or_none(contact.get("user_id")),
            username=_str(conversation.get("username")) or _str(contact.get("username")),
        )
    if name == "whatsapp.contact.marketing_preference_changed":
        contact = _dict(item.get("contact"))
        pref = _dict(item.get("marketing_preference"))
        wa_id = wa_id_or_none(contact.get("wa_id"))
        status = (_str(pref.get("status")) or "").lower()
        if wa_id is None or status not in ("stopped", "resumed"):
            return "unreadable marketing preference change"
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
) -> StatusUpdate | str:
    wamid = _str(message.get("id"))
    if wamid is None:
        return f"{status.value} status without a message id"
    history = [_dict(s) for s in _list(_dict(message.get("kapso")).get("statuses"))]
    latest: dict[str, Any] = next(
        (s for s in reversed(history) if s.get("status") == status.value), {}
    )
    callback = next(
        (
            _str(s.get("biz_opaque_callback_data"))
            for s in history
            if s.get("biz_opaque_callback_data")
        ),
        None,
    )
    errors = _errors(latest.get("errors")) or _errors(message.get("errors"))
    return StatusUpdate(
        wamid=wamid,
        status=status,
        timestamp=parse_timestamp(latest.get("timestamp") or message.get("timestamp")),
        recipient_id=wa_id_or_none(latest.get("recipient_id"))
        or wa_id_or_none(conversation.get("phone_number")),
        callback_data=callback,
        errors=errors,
        phone_number_id=phone_number_id,
        recipient_user_id=user_id_or_none(latest.get("recipient_user_id"))
        or user_id_or_none(conversation.get("user_id")),
    )
