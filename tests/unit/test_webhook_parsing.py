"""Webhook signatures and payload parsing (Meta's and Kapso's documented shapes)."""

from __future__ import annotations

from datetime import UTC, datetime

from broadcasts.opt_outs import keyword_intent
from kapso.webhooks import (
    InboundMessage,
    MessageStatus,
    StatusUpdate,
    TemplateStatusUpdate,
    UserPreferenceUpdate,
    parse_kapso,
    parse_meta,
    sign,
    verify_kapso_signature,
    verify_meta_signature,
)

SECRET = "app-secret"


def meta_body(field: str, value: dict[str, object]) -> dict[str, object]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA1", "changes": [{"field": field, "value": value}]}],
    }


def test_meta_signature_needs_the_prefix_and_the_right_secret() -> None:
    raw = b'{"a":1}'
    good = "sha256=" + sign(raw, SECRET)
    assert verify_meta_signature(raw, good, SECRET)
    assert not verify_meta_signature(raw, sign(raw, SECRET), SECRET)
    assert not verify_meta_signature(raw + b" ", good, SECRET)
    assert not verify_meta_signature(raw, good, "other")
    assert not verify_meta_signature(raw, None, SECRET)
    assert not verify_meta_signature(raw, good, None)


def test_kapso_signature_tolerates_a_sha256_prefix() -> None:
    raw = b'{"b":2}'
    assert verify_kapso_signature(raw, sign(raw, SECRET), SECRET)
    assert verify_kapso_signature(raw, "sha256=" + sign(raw, SECRET).upper(), SECRET)
    assert not verify_kapso_signature(raw, "deadbeef", SECRET)


def test_meta_statuses_parse_with_errors_and_callback_data() -> None:
    parsed = parse_meta(
        meta_body(
            "messages",
            {
                "metadata": {"phone_number_id": "PN1"},
                "statuses": [
                    {
                        "id": "wamid.A",
                        "status": "failed",
                        "timestamp": "1730000000",
                        "recipient_id": "15551234567",
                        "biz_opaque_callback_data": "bb1:b-1:7",
                        "errors": [
                            {
                                "code": 131026,
                                "title": "Message undeliverable",
                                "error_data": {"details": "not on WhatsApp"},
                            }
                        ],
                    },
                    {"id": "wamid.B", "status": "deleted", "timestamp": "1730000001"},
                ],
            },
        )
    )
    first, second = parsed.events
    assert isinstance(first, StatusUpdate) and isinstance(second, StatusUpdate)
    assert first.status is MessageStatus.FAILED
    assert first.timestamp == datetime.fromtimestamp(1730000000, UTC)
    assert first.callback_data == "bb1:b-1:7"
    assert first.phone_number_id == "PN1"
    assert first.errors[0].code == 131026
    assert first.errors[0].details == "not on WhatsApp"
    assert second.status is MessageStatus.UNKNOWN


def test_meta_reply_with_context_and_button() -> None:
    parsed = parse_meta(
        meta_body(
            "messages",
            {
                "metadata": {"phone_number_id": "PN1"},
                "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5511999999999"}],
                "messages": [
                    {
                        "from": "5511999999999",
                        "id": "wamid.IN1",
                        "timestamp": "1730000100",
                        "type": "button",
                        "button": {"payload": "YES", "text": "Yes please"},
                        "context": {"from": "15550001111", "id": "wamid.TEMPLATE"},
                    }
                ],
            },
        )
    )
    (message,) = parsed.events
    assert isinstance(message, InboundMessage)
    assert message.from_wa_id == "5511999999999"
    assert message.profile_name == "Ana"
    assert message.context_id == "wamid.TEMPLATE"
    assert message.body == "Yes please"


def test_meta_template_status_and_user_preferences() -> None:
    template = parse_meta(
        meta_body(
            "message_template_status_update",
            {
                "event": "PAUSED",
                "message_template_id": 42,
                "message_template_name": "holiday_promotion",
                "message_template_language": "en_US",
                "reason": "LOW_QUALITY",
            },
        )
    ).events[0]
    assert template == TemplateStatusUpdate(
        "WABA1", "42", "holiday_promotion", "en_US", "PAUSED", "LOW_QUALITY"
    )
    pref = parse_meta(
        meta_body(
            "user_preferences",
            {
                "user_preferences": [
                    {
                        "wa_id": "4915112345678",
                        "category": "marketing_messages",
                        "value": "stop",
                        "timestamp": 1730000200,
                    }
                ]
            },
        )
    ).events[0]
    assert isinstance(pref, UserPreferenceUpdate) and pref.opted_out


def test_unknown_fields_and_garbage_are_ignored_not_fatal() -> None:
    parsed = parse_meta(meta_body("account_update", {"x": 1}))
    assert parsed.events == () and parsed.ignored == ("field account_update",)
    assert parse_meta({"entry": "nonsense"}).events == ()
    assert parse_meta([1, 2]).events == ()
    assert parse_kapso({"message": {}}, "whatsapp.message.delivered").events == ()


def kapso_status(wamid: str, status: str) -> dict[str, object]:
    return {
        "message": {
            "id": wamid,
            "timestamp": "1730092888",
            "type": "template",
            "kapso": {
                "direction": "outbound",
                "status": status,
                "statuses": [
                    {
                        "id": wamid,
                        "status": "sent",
                        "timestamp": "1730092860",
                        "recipient_id": "15551234567",
                        "biz_opaque_callback_data": "bb1:x:3",
                    },
                    {
                        "id": wamid,
                        "status": status,
                        "timestamp": "1730092888",
                        "recipient_id": "15551234567",
                        "errors": [{"code": 131049, "title": "Not delivered"}]
                        if status == "failed"
                        else [],
                    },
                ],
            },
        },
        "conversation": {"id": "conv_1", "phone_number": "+15551234567", "phone_number_id": "PN1"},
        "is_new_conversation": False,
        "phone_number_id": "PN1",
    }


def test_kapso_status_events_single_and_batched() -> None:
    single = parse_kapso(kapso_status("wamid.K1", "failed"), "whatsapp.message.failed")
    (event,) = single.events
    assert isinstance(event, StatusUpdate)
    assert event.status is MessageStatus.FAILED
    assert event.errors[0].code == 131049
    assert event.callback_data == "bb1:x:3"
    assert event.timestamp == datetime.fromtimestamp(1730092888, UTC)
    batch = parse_kapso(
        {"batch": True, "data": [kapso_status(f"wamid.{i}", "delivered") for i in range(3)]},
        "whatsapp.message.delivered",
    )
    assert [e.wamid for e in batch.events if isinstance(e, StatusUpdate)] == [
        "wamid.0",
        "wamid.1",
        "wamid.2",
    ]


def test_kapso_received_and_forwarded_meta_body() -> None:
    received = parse_kapso(
        {
            "message": {
                "id": "wamid.R",
                "timestamp": "1730092800",
                "type": "text",
                "text": {"body": "STOP"},
                "context": {"id": "wamid.T"},
                "kapso": {"direction": "inbound"},
            },
            "conversation": {
                "id": "c",
                "phone_number": "+15551234567",
                "phone_number_id": "PN1",
                "kapso": {"contact_name": "John"},
            },
            "is_new_conversation": True,
            "phone_number_id": "PN1",
        },
        "whatsapp.message.received",
    )
    (message,) = received.events
    assert isinstance(message, InboundMessage)
    assert (message.from_wa_id, message.profile_name, message.text, message.context_id) == (
        "15551234567",
        "John",
        "STOP",
        "wamid.T",
    )
    forwarded = parse_kapso(
        meta_body("messages", {"statuses": [{"id": "wamid.F", "status": "read"}]}), None
    )
    assert isinstance(forwarded.events[0], StatusUpdate)


def test_stop_keywords_in_several_languages() -> None:
    out = {"stop", "baja", "arrêt", "opt out"}
    back = {"start"}
    assert keyword_intent(" Stop! ", out, back) is True
    assert keyword_intent("BAJA", out, back) is True
    assert keyword_intent("arret", out, back) is True
    assert keyword_intent("opt-out", out, back) is True
    assert keyword_intent("start", out, back) is False
    assert keyword_intent("please stop sending me offers", out, back) is None
    assert keyword_intent(None, out, back) is None
