"""Every inbound shape WhatsApp and Kapso document, replayed through the parser at the edge.

Payloads are written from Meta's webhook reference (messages: text, image, video, audio,
document, sticker, location, contacts, reaction, order, interactive, button, system, unsupported,
revoke, edit; statuses), Meta's business-scoped user id page (`from_user_id`, `contacts[].user_id`,
`profile.username`, `recipient_user_id`) and Kapso's webhook docs (v2 events, batches).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from kapso.webhooks import (
    InboundMessage,
    MessageStatus,
    StatusUpdate,
    clean_text,
    message_content,
    parse_kapso,
    parse_meta,
    parse_timestamp,
    user_id_or_none,
    wa_id_or_none,
)

PHONE = "16505551234"
BSUID = "US.13491208655302741918"
TS = "1764590000"


def meta(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def inbound(message: dict[str, Any], *, with_phone: bool = True) -> dict[str, Any]:
    contact: dict[str, Any] = {"profile": {"name": "Sheena Nelson"}, "user_id": BSUID}
    sender: dict[str, Any] = {"from_user_id": BSUID}
    if with_phone:
        contact["wa_id"] = PHONE
        sender["from"] = PHONE
    return meta(
        {
            "contacts": [contact],
            "messages": [{**sender, "id": "wamid.IN", "timestamp": TS, **message}],
        }
    )


def only_message(body: dict[str, Any]) -> InboundMessage:
    parsed = parse_meta(body)
    (event,) = parsed.events
    assert isinstance(event, InboundMessage)
    return event


SHAPES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "text": (
        {"type": "text", "text": {"body": "Is the sale still on?"}},
        {"text": "Is the sale still on?"},
    ),
    "image": (
        {
            "type": "image",
            "image": {
                "caption": "This one, please",
                "mime_type": "image/jpeg",
                "sha256": "Ez3hh0LS8kD6nrn5aHgmTfG8SLKJrFe8c4yVntFBxEE=",
                "id": "1003383421387256",
            },
        },
        {
            "caption": "This one, please",
            "media.id": "1003383421387256",
            "media.mime_type": "image/jpeg",
        },
    ),
    "video": (
        {"type": "video", "video": {"mime_type": "video/mp4", "id": "1200", "caption": "Look"}},
        {"caption": "Look", "media.id": "1200"},
    ),
    "audio": (
        {
            "type": "audio",
            "audio": {"mime_type": "audio/ogg; codecs=opus", "id": "77", "voice": True},
        },
        {"media.id": "77", "media.voice": True},
    ),
    "document": (
        {
            "type": "document",
            "document": {
                "caption": "My invoice",
                "filename": "invoice.pdf",
                "mime_type": "application/pdf",
                "id": "88",
            },
        },
        {"caption": "My invoice", "media.filename": "invoice.pdf"},
    ),
    "sticker": (
        {"type": "sticker", "sticker": {"mime_type": "image/webp", "id": "99", "animated": False}},
        {"media.id": "99", "media.animated": False},
    ),
    "location": (
        {
            "type": "location",
            "location": {
                "address": "1 Hacker Way, Menlo Park, CA 94025",
                "latitude": 37.483307,
                "longitude": -122.148981,
                "name": "Main store",
                "url": "https://example.com",
            },
        },
        {"location.latitude": 37.483307, "location.name": "Main store"},
    ),
    "contacts": (
        {
            "type": "contacts",
            "contacts": [
                {
                    "name": {
                        "first_name": "Barbara",
                        "last_name": "Johnson",
                        "formatted_name": "Barbara J. Johnson",
                    },
                    "phones": [
                        {"phone": "+1 (940) 555-1234", "wa_id": "19405551234", "type": "HOME"}
                    ],
                    "emails": [{"email": "bjohnson@example.com", "type": "WORK"}],
                    "org": {"company": "Lucky Shrub"},
                }
            ],
        },
        {"contacts.0.name": "Barbara J. Johnson", "contacts.0.phones.0.wa_id": "19405551234"},
    ),
    "reaction": (
        {"type": "reaction", "reaction": {"message_id": "wamid.TEMPLATE", "emoji": "\U0001f44d"}},
        {"reaction.emoji": "\U0001f44d", "reaction.message_id": "wamid.TEMPLATE"},
    ),
    "order": (
        {
            "type": "order",
            "order": {
                "catalog_id": "194836987003835",
                "text": "Two of these",
                "product_items": [
                    {
                        "product_retailer_id": "di9ozbzfi4",
                        "quantity": 2,
                        "item_price": 30,
                        "currency": "USD",
                    }
                ],
            },
        },
        {"order.catalog_id": "194836987003835", "order.items.0.quantity": 2.0},
    ),
    "interactive_button": (
        {
            "type": "interactive",
            "context": {"from": "15550783881", "id": "wamid.TEMPLATE"},
            "interactive": {
                "type": "button_reply",
                "button_reply": {"id": "yes", "title": "Yes please"},
            },
        },
        {"text": "Yes please", "interactive.id": "yes", "interactive.type": "button_reply"},
    ),
    "interactive_list": (
        {
            "type": "interactive",
            "interactive": {
                "type": "list_reply",
                "list_reply": {"id": "size_m", "title": "Medium", "description": "Fits 38-40"},
            },
        },
        {"interactive.description": "Fits 38-40"},
    ),
    "button": (
        {
            "type": "button",
            "context": {"from": "15550783881", "id": "wamid.TEMPLATE"},
            "button": {"payload": "STOP_PROMOS", "text": "Stop promotions"},
        },
        {"text": "Stop promotions", "button.payload": "STOP_PROMOS"},
    ),
    "system": (
        {
            "type": "system",
            "system": {
                "body": "User A changed from 16505551234 to 16505559999",
                "wa_id": "16505559999",
                "type": "user_changed_number",
            },
        },
        {"system.new_wa_id": "16505559999", "system.type": "user_changed_number"},
    ),
    "unsupported": (
        {
            "type": "unsupported",
            "errors": [
                {
                    "code": 131051,
                    "title": "Message type unknown",
                    "message": "Message type unknown",
                    "error_data": {"details": "Message type is currently not supported."},
                }
            ],
        },
        {"errors.0.code": 131051},
    ),
    "revoke": (
        {"type": "revoke", "revoke": {"original_message_id": "wamid.EARLIER"}},
        {"target_message_id": "wamid.EARLIER"},
    ),
    "edit": (
        {
            "type": "edit",
            "edit": {
                "original_message_id": "wamid.EARLIER",
                "message": {"type": "text", "text": {"body": "Make it two"}},
            },
        },
        {"target_message_id": "wamid.EARLIER", "edit.text": "Make it two", "text": "Make it two"},
    ),
}


def dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_message_type_keeps_its_content(name: str) -> None:
    raw, expected = SHAPES[name]
    message = only_message(inbound(raw))
    content = message_content(message.raw)
    assert content["kind"] == raw["type"]
    for path, value in expected.items():
        assert dig(content, path) == value, path
    assert message.from_wa_id == PHONE and message.user_id == BSUID


@pytest.mark.parametrize(
    ("name", "is_reply"),
    [
        ("text", True),
        ("image", True),
        ("order", True),
        ("button", True),
        ("reaction", False),
        ("system", False),
        ("revoke", False),
        ("edit", False),
    ],
)
def test_only_customer_answers_are_replies(name: str, is_reply: bool) -> None:
    assert only_message(inbound(SHAPES[name][0])).is_reply is is_reply


def test_a_caption_is_the_body_of_a_media_message_and_an_edit_has_its_new_text() -> None:
    assert only_message(inbound(SHAPES["image"][0])).body == "This one, please"
    assert only_message(inbound(SHAPES["edit"][0])).body == "Make it two"


def test_a_username_user_without_a_phone_number_is_kept_with_every_identifier() -> None:
    body = inbound({"type": "text", "text": {"body": "hi"}}, with_phone=False)
    body["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["username"] = "@sheena"
    message = only_message(body)
    assert (message.from_wa_id, message.user_id, message.username) == (None, BSUID, "@sheena")
    assert message.profile_name == "Sheena Nelson"


def test_a_status_for_a_user_id_only_recipient_carries_it() -> None:
    body = meta(
        {
            "statuses": [
                {
                    "id": "wamid.S",
                    "status": "delivered",
                    "timestamp": TS,
                    "recipient_user_id": BSUID,
                    "biz_opaque_callback_data": "bb1:x:1",
                }
            ]
        }
    )
    (status,) = parse_meta(body).events
    assert isinstance(status, StatusUpdate)
    assert (status.recipient_id, status.recipient_user_id) == (None, BSUID)


@pytest.mark.parametrize("status", ["sent", "delivered", "read", "failed", "deleted"])
def test_every_status_parses_and_an_unknown_one_is_tolerated(status: str) -> None:
    body = meta(
        {"statuses": [{"id": "wamid.S", "status": status, "timestamp": TS, "recipient_id": PHONE}]}
    )
    (event,) = parse_meta(body).events
    assert isinstance(event, StatusUpdate)
    expected = MessageStatus.UNKNOWN if status == "deleted" else MessageStatus(status)
    assert event.status is expected


# -- sanitising at the edge -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:59:59-12:00", 99999999999, "99999999999", -5e9, "-5e9", "nan", "soon", True],
)
def test_absurd_timestamps_never_raise_and_never_store_another_century(value: object) -> None:
    before = datetime.now(UTC)
    parsed = parse_timestamp(value)
    assert before <= parsed <= datetime.now(UTC)  # replaced by the time of receipt


def test_sane_timestamps_are_kept() -> None:
    assert parse_timestamp(TS) == datetime.fromtimestamp(int(TS), UTC)
    assert parse_timestamp("2025-11-20T10:00:00-03:00") == datetime(2025, 11, 20, 13, tzinfo=UTC)


def test_an_escaped_lone_surrogate_still_reaches_the_agent_as_text() -> None:
    raw = json.loads('{"type": "text", "text": {"body": "caf\\ud83d and \\ud83d\\ude00 \\u0000"}}')
    message = only_message(inbound(raw))
    assert message.text == "caf\ufffd and \U0001f600 \ufffd"
    message.text.encode("utf-8")  # storable in PostgreSQL
    json.dumps(message.raw, ensure_ascii=False).encode("utf-8")
    assert clean_text("plain") == "plain"


@pytest.mark.parametrize("sender", ["=1+1", "abc", "", "12", "+1 650 555 1234", "1" * 16])
def test_senders_that_are_not_phone_numbers_create_nothing(sender: str) -> None:
    body = meta(
        {
            "contacts": [{"profile": {"name": "X"}, "wa_id": sender}],
            "messages": [
                {
                    "from": sender,
                    "id": "wamid.BAD",
                    "timestamp": TS,
                    "type": "text",
                    "text": {"body": "hi"},
                }
            ],
        }
    )
    parsed = parse_meta(body)
    assert parsed.events == ()
    assert any("invalid or missing sender" in i for i in parsed.ignored)


def test_identifiers_are_validated() -> None:
    assert wa_id_or_none("+16505551234") == PHONE
    assert wa_id_or_none("=1+1") is None
    assert user_id_or_none(BSUID) == BSUID
    assert user_id_or_none("US.ENT.11815799212886844830") == "US.ENT.11815799212886844830"
    assert user_id_or_none("us.123") is None and user_id_or_none("US.") is None


def test_one_bad_message_never_costs_the_rest_of_the_body() -> None:
    good = {
        "from": PHONE,
        "id": "wamid.GOOD",
        "timestamp": TS,
        "type": "text",
        "text": {"body": "ok"},
    }
    body = meta(
        {
            "statuses": [
                {"id": "wamid.S1", "status": "read", "timestamp": "9999-12-31T23:59:59-12:00"},
                "not an object",
                {"status": "sent"},
            ],
            "messages": [
                {"from": "=1+1", "id": "wamid.BAD", "type": "text", "text": {"body": "x"}},
                [1, 2],
                good,
                {
                    "from": PHONE,
                    "id": "wamid.ODD",
                    "timestamp": -5e9,
                    "type": "text",
                    "text": {"body": "y"},
                },
            ],
        }
    )
    parsed = parse_meta(body)
    ids = [getattr(e, "wamid", None) for e in parsed.events]
    assert ids == ["wamid.S1", "wamid.GOOD", "wamid.ODD"]
    assert len(parsed.ignored) == 4


def test_errors_about_the_number_are_named_not_dropped() -> None:
    body = meta(
        {
            "errors": [
                {
                    "code": 131042,
                    "title": "Business eligibility payment issue",
                    "error_data": {"details": "Check your payment method"},
                }
            ]
        }
    )
    parsed = parse_meta(body)
    assert parsed.events == ()
    assert parsed.ignored == (
        "error 131042: Business eligibility payment issue Check your payment method",
    )


# -- Kapso ----------------------------------------------------------------------------------------


def kapso_received(
    conversation: dict[str, Any], message: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "message": message
        or {
            "id": "wamid.K1",
            "timestamp": "1764590000",
            "type": "text",
            "text": {"body": "hola"},
            "kapso": {"direction": "inbound"},
        },
        "conversation": {
            "id": "conv-1",
            "phone_number_id": "106540352242922",
            "status": "active",
            **conversation,
        },
        "is_new_conversation": True,
        "phone_number_id": "106540352242922",
    }


def test_kapso_batches_without_the_event_header_read_the_type_from_the_body() -> None:
    item = {
        "event": "whatsapp.message.received",
        "data": kapso_received({"phone_number": "+16505551234"}),
    }
    for header in (None, "batch"):
        parsed = parse_kapso({"batch": True, "data": [item, item]}, header)
        assert [type(e) for e in parsed.events] == [InboundMessage, InboundMessage]


def test_kapso_single_event_without_header_reads_it_from_the_body() -> None:
    body = {
        "event": "whatsapp.message.received",
        **kapso_received({"phone_number": "+16505551234"}),
    }
    (event,) = parse_kapso(body, None).events
    assert isinstance(event, InboundMessage) and event.from_wa_id == PHONE


def test_a_kapso_message_without_a_phone_number_is_kept_by_user_id() -> None:
    body = kapso_received({"user_id": BSUID, "username": "@sheena"})
    (event,) = parse_kapso(body, "whatsapp.message.received").events
    assert isinstance(event, InboundMessage)
    assert (event.from_wa_id, event.user_id, event.username) == (None, BSUID, "@sheena")


def test_kapso_kinds_we_do_not_act_on_are_named() -> None:
    body = {"conversation": {"id": "c1"}}
    parsed = parse_kapso(body, "whatsapp.conversation.ended")
    assert parsed.events == () and parsed.ignored == ("event whatsapp.conversation.ended",)


def test_kapso_failed_status_takes_errors_from_the_message_when_the_history_has_none() -> None:
    body = {
        "message": {
            "id": "wamid.F",
            "timestamp": "1764590000",
            "errors": [{"code": 131049, "title": "Not delivered"}],
            "kapso": {"statuses": [{"status": "failed", "timestamp": "1764590001"}]},
        },
        "conversation": {"phone_number": "+16505551234"},
        "phone_number_id": "106540352242922",
    }
    (status,) = parse_kapso(body, "whatsapp.message.failed").events
    assert isinstance(status, StatusUpdate)
    assert status.status is MessageStatus.FAILED and status.errors[0].code == 131049
