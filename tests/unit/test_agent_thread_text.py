"""What a Slack agent's thread shows for each kind of inbound message (from the typed contract)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.slack.agent_threads import message_text
from broadcasts.models import Contact, Message
from jobs.agents import typed_message
from kapso.webhooks import message_content


def shown(raw: dict[str, Any]) -> str:
    text = message_content(raw).get("text") or message_content(raw).get("caption")
    message = Message(
        wamid="wamid.X", type=raw["type"], text=text, timestamp=datetime(2026, 11, 20, tzinfo=UTC)
    )
    contact = Contact(phone="+15551110000", wa_id="15551110000")
    return message_text({"message": typed_message(message, raw, contact)})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"type": "text", "text": {"body": "Hi"}}, "Hi"),
        (
            {"type": "image", "image": {"id": "77", "mime_type": "image/jpeg", "caption": "This"}},
            "📎 image (image/jpeg, media id 77): This",
        ),
        (
            {"type": "location", "location": {"latitude": 1.5, "longitude": 2, "name": "Shop"}},
            "📍 Shop (1.5, 2.0)",
        ),
        (
            {"type": "reaction", "reaction": {"message_id": "w", "emoji": "👍"}},
            "reacted 👍 to a message",
        ),
        ({"type": "reaction", "reaction": {"message_id": "w"}}, "removed their reaction"),
        (
            {
                "type": "order",
                "order": {"product_items": [{"product_retailer_id": "sku1", "quantity": 2}]},
            },
            "🛒 order: 2 × sku1",
        ),
        ({"type": "revoke", "revoke": {"original_message_id": "w"}}, "ℹ️ deleted a message"),
        ({"type": "unsupported"}, "[unsupported]"),
    ],
)
def test_each_kind_reads_as_a_sentence(raw: dict[str, Any], expected: str) -> None:
    assert shown(raw) == expected
