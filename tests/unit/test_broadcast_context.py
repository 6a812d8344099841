"""broadcast_context: the seed's five fields with the seed's meanings, additions by name."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.slack.agent_threads import header_text
from broadcasts.models import Broadcast, Recipient, Template, TestSend
from jobs.agents import broadcast_context, context_of_test_send

SENT = datetime(2024, 12, 20, 10, 0, tzinfo=UTC)
SEED_FIELDS = ["broadcast_id", "broadcast_name", "template_name", "template_content", "sent_at"]


def _broadcast() -> Broadcast:
    template = Template(
        name="holiday_promotion",
        language="en_US",
        body_text="Hi {{1}}, check out our special holiday offers!",
    )
    return Broadcast(id="uuid-here", name="Holiday Sale 2024", template=template)


def test_seed_fields_come_first_and_template_content_keeps_its_placeholders() -> None:
    recipient = Recipient(params={"1": "Ana"}, wamid="wamid.ABC", sent_at=SENT)
    context = broadcast_context(_broadcast(), recipient)
    assert list(context)[:5] == SEED_FIELDS
    assert {k: context[k] for k in SEED_FIELDS} == {
        "broadcast_id": "uuid-here",
        "broadcast_name": "Holiday Sale 2024",
        "template_name": "holiday_promotion",
        "template_content": "Hi {{1}}, check out our special holiday offers!",
        "sent_at": "2024-12-20T10:00:00Z",
    }
    assert context["parameters"] == {"1": "Ana"}
    assert context["rendered_content"] == "Hi Ana, check out our special holiday offers!"
    assert (context["wamid"], context["is_test"]) == ("wamid.ABC", False)


def test_a_test_send_context_has_the_same_shape_marked_as_a_test() -> None:
    test_send = TestSend(params={"1": "Tester"}, wamid="wamid.T", sent_at=SENT)
    context = context_of_test_send(_broadcast(), test_send)
    real = broadcast_context(_broadcast(), Recipient(params={}, wamid=None, sent_at=SENT))
    assert list(context) == list(real)
    assert context["is_test"] is True
    assert context["rendered_content"] == "Hi Tester, check out our special holiday offers!"
    assert context["template_content"] == "Hi {{1}}, check out our special holiday offers!"


def test_a_slack_agent_thread_shows_what_the_person_read_and_marks_test_sends() -> None:
    context = broadcast_context(
        _broadcast(), Recipient(params={"1": "Ana"}, wamid="wamid.ABC", sent_at=SENT)
    )
    payload = {"contact": {"name": "Ana", "phone": "+15551234567"}, "broadcast_context": context}
    header = header_text(payload)
    assert ">Hi Ana, check out our special holiday offers!" in header
    assert "replied to broadcast *Holiday Sale 2024*" in header
    test = context_of_test_send(_broadcast(), TestSend(params={"1": "T"}, wamid="w", sent_at=SENT))
    assert "replied to a *test send* of broadcast" in header_text({"broadcast_context": test})
