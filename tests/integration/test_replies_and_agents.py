"""Replies over real HTTP: attribution, conversations, opt-outs, and the webhook agent contract."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.actors import slack_user
from broadcasts.enums import DeliveryStatus, RecipientStatus
from broadcasts.errors import ValidationFailed
from broadcasts.metrics import recount, stored_counts
from broadcasts.models import (
    Agent,
    AgentDelivery,
    Broadcast,
    Contact,
    Conversation,
    Message,
    Recipient,
    WhatsAppConfig,
)
from broadcasts.recipient_status import mark_sent
from broadcasts.replies import record_test_send
from jobs import agents
from jobs.runtime import Runtime, install
from jobs.settings import Settings
from tests.factories import add_recipients, make_broadcast
from tests.webhook_support import (
    AGENT_SECRET,
    AGENT_SECRET_ENV,
    FakeAgent,
    drain,
    fake_agent,
    meta_change,
    meta_headers,
    meta_message,
    post,
    private_redis_url,
    running_app,
    settings_for,
)

SENT_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
T_SENT = int(SENT_AT.timestamp())


redis_url = pytest.fixture(private_redis_url)


@pytest.fixture
def settings(db_url: str, redis_url: str) -> Settings:
    return settings_for(db_url, redis_url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    install(rt)
    yield rt
    rt.close()


@pytest.fixture
def base(settings: Settings) -> Iterator[str]:
    with running_app(settings) as url:
        yield url


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAgent]:
    monkeypatch.setenv(AGENT_SECRET_ENV, AGENT_SECRET)
    with fake_agent() as fake:
        yield fake


def broadcast_to(
    sessions: sessionmaker[Session], agent_url: str, phones: list[str]
) -> tuple[str, list[int]]:
    """A sent broadcast whose agent is the fake one; recipient i has wamid.T{i}."""
    with sessions() as s, s.begin():
        broadcast = make_broadcast(s)
        agent_row = s.get(Agent, broadcast.agent_id)
        assert agent_row is not None
        agent_row.url, agent_row.secret_env = agent_url, AGENT_SECRET_ENV
        recipients = add_recipients(s, broadcast, phones)
        for i, r in enumerate(recipients):
            r.status = RecipientStatus.SENDING
            s.flush()
            mark_sent(
                s,
                r,
                wamid=f"wamid.T{i}",
                wa_id=r.phone.lstrip("+"),
                message_status="accepted",
                at=SENT_AT,
            )
        return broadcast.id, [r.id for r in recipients]


def send_in(base: str, raw: bytes) -> None:
    assert post(base, "/webhooks/whatsapp", raw, meta_headers(raw)).status_code == 200


def test_reply_quoting_the_template_reaches_the_agent_with_broadcast_context(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_id, (rid, _) = broadcast_to(sessions, agent.url, ["+15551110000", "+15551110001"])
    send_in(
        base,
        meta_message(
            "15551110000",
            "wamid.IN1",
            "Tell me more",
            T_SENT + 60,
            context="wamid.T0",
            name="Ana Lima",
        ),
    )
    drain(runtime)
    (call,) = agent.calls
    expected = "sha256=" + hmac.new(AGENT_SECRET.encode(), call.body, hashlib.sha256).hexdigest()
    assert call.headers["X-Broadcast-Signature"] == expected
    body = call.json
    assert call.headers["X-Idempotency-Key"] == body["idempotency_key"]
    assert body["broadcast_context"] == {
        "broadcast_id": broadcast_id,
        "broadcast_name": "Holiday Sale",
        "template_name": "holiday_promotion",
        "template_content": "Hi {{1}}, check out our special holiday offers!",
        "sent_at": "2026-11-20T10:00:00Z",
        "template_language": "en_US",
        "parameters": {"1": "Ana"},
        "rendered_content": "Hi Ana, check out our special holiday offers!",
        "wamid": "wamid.T0",
        "is_test": False,
    }
    assert body["message"]["text"] == "Tell me more"
    assert body["message"]["id"] == "wamid.IN1"
    assert body["contact"]["name"] == "Ana Lima"
    assert body["contact"]["phone"] == "+15551110000"
    assert body["conversation"]["is_new"] is True
    with sessions() as s:
        recipient = s.get(Recipient, rid)
        assert recipient is not None and recipient.responded_at is not None
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None and broadcast.responded_count == 1
        assert stored_counts(broadcast) == recount(s, broadcast_id)
        assert stored_counts(broadcast).response_rate == 0.5
        conversation = s.get(Conversation, body["conversation"]["id"])
        assert conversation is not None and conversation.broadcast_id == broadcast_id
        delivery = s.scalar(select(AgentDelivery))
        assert delivery is not None
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)


def test_reply_without_context_is_attributed_by_window_and_responds_once(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_id, (rid,) = broadcast_to(sessions, agent.url, ["+15551110000"])
    send_in(base, meta_message("15551110000", "wamid.IN1", "hello?", T_SENT + 3600))
    send_in(base, meta_message("15551110000", "wamid.IN2", "anyone?", T_SENT + 7200))
    drain(runtime)
    first, second = (c.json for c in agent.calls)
    assert first["broadcast_context"]["broadcast_id"] == broadcast_id
    assert second["broadcast_context"]["broadcast_id"] == broadcast_id
    assert first["conversation"] == {"id": first["conversation"]["id"], "is_new": True}
    assert second["conversation"] == {"id": first["conversation"]["id"], "is_new": False}
    assert first["idempotency_key"] != second["idempotency_key"]
    with sessions() as s:
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None and broadcast.responded_count == 1
        recipient = s.get(Recipient, rid)
        assert recipient is not None
        assert recipient.responded_at == SENT_AT + timedelta(hours=1)


def test_message_outside_the_window_has_no_context_and_starts_a_new_conversation(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_to(sessions, agent.url, ["+15551110000"])
    send_in(base, meta_message("15551110000", "wamid.IN1", "hi", T_SENT + 3600))
    late = T_SENT + 3600 * 100  # beyond the 72 h window and the 24 h inactivity window
    send_in(base, meta_message("15551110000", "wamid.IN2", "hi again", late))
    send_in(base, meta_message("4915112345678", "wamid.IN3", "who are you?", late, name="Max"))
    drain(runtime)
    first, second, stranger = (c.json for c in agent.calls)
    assert first["broadcast_context"] is not None
    assert second["broadcast_context"] is None
    assert second["conversation"]["is_new"] is True
    assert second["conversation"]["id"] != first["conversation"]["id"]
    assert stranger["broadcast_context"] is None
    assert stranger["contact"]["phone"] == "+4915112345678"
    with sessions() as s:
        contact = s.scalar(select(Contact).where(Contact.wa_id == "4915112345678"))
        assert contact is not None and contact.name == "Max"


def test_redelivered_message_reaches_the_agent_once(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_to(sessions, agent.url, ["+15551110000"])
    raw = meta_message("15551110000", "wamid.IN1", "hi", T_SENT + 60)
    send_in(base, raw)
    drain(runtime)
    send_in(base, raw)
    # The same message again in another body (e.g. through Kapso's forwarding as well).
    send_in(base, meta_message("15551110000", "wamid.IN1", "hi", T_SENT + 60, name="Other"))
    drain(runtime)
    assert len(agent.calls) == 1


def test_agent_failure_is_recorded_and_retried_until_delivered(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_to(sessions, agent.url, ["+15551110000"])
    agent.answers = [500, 503]
    send_in(base, meta_message("15551110000", "wamid.IN1", "hi", T_SENT + 60))
    drain(runtime)
    with sessions() as s:
        delivery = s.scalar(select(AgentDelivery))
        assert delivery is not None
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
        assert delivery.last_error is not None and "HTTP 500" in delivery.last_error
        assert delivery.next_attempt_at is not None
        delivery_id = delivery.id
    # The retry is scheduled with backoff; run the attempts now instead of waiting for them.
    assert agents.deliver(delivery_id) == "retrying"
    assert agents.deliver(delivery_id) == "delivered"
    assert agents.deliver(delivery_id) == "nothing to do"
    assert len(agent.calls) == 3
    assert len({c.headers["X-Idempotency-Key"] for c in agent.calls}) == 1
    with sessions() as s:
        delivery = s.get(AgentDelivery, delivery_id)
        assert delivery is not None
        assert (delivery.status, delivery.attempts, delivery.last_error) == (
            DeliveryStatus.DELIVERED,
            3,
            None,
        )


def test_agent_gives_up_after_the_attempt_limit(
    db_url: str, redis_url: str, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    runtime = Runtime(settings_for(db_url, redis_url, agent_max_attempts=2))
    install(runtime)
    broadcast_to(sessions, agent.url, ["+15551110000"])
    agent.answers = [500, 500]
    with running_app(runtime.settings) as url:
        send_in(url, meta_message("15551110000", "wamid.IN1", "hi", T_SENT + 60))
    drain(runtime)
    with sessions() as s:
        delivery = s.scalar(select(AgentDelivery))
        assert delivery is not None
    assert agents.deliver(delivery.id) == "failed"
    with sessions() as s:
        rows = agents.list_deliveries(s, status="failed")
        assert [d.id for d, _ in rows] == [delivery.id]
    runtime.close()


def test_stop_opts_out_start_opts_back_in_and_the_agent_still_hears(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_id, (rid,) = broadcast_to(sessions, agent.url, ["+15551110000"])
    send_in(base, meta_message("15551110000", "wamid.IN1", "STOP", T_SENT + 60))
    drain(runtime)
    with sessions() as s:
        contact = s.scalar(select(Contact).where(Contact.phone == "+15551110000"))
        assert contact is not None and contact.opted_out_at is not None
        # A STOP reply is an opt-out of this broadcast, not a response to it.
        recipient = s.get(Recipient, rid)
        assert recipient is not None
        assert (recipient.opted_out_at is not None, recipient.responded_at) == (True, None)
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None
        counts = stored_counts(broadcast)
        assert (counts.opted_out, counts.responded, counts.response_rate) == (1, 0, 0.0)
        assert counts == recount(s, broadcast_id)
    assert agent.calls[0].json["message"]["text"] == "STOP"
    assert agent.calls[0].json["contact"]["opted_out"] is True
    send_in(base, meta_message("15551110000", "wamid.IN2", "Start", T_SENT + 120))
    drain(runtime)
    with sessions() as s:
        contact = s.scalar(select(Contact).where(Contact.phone == "+15551110000"))
        assert contact is not None and contact.opted_out_at is None


def test_reply_to_a_test_send_reaches_the_agent_with_a_test_context(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_id, _ = broadcast_to(sessions, agent.url, ["+15551110000"])
    with sessions() as s, s.begin():
        record_test_send(
            s,
            broadcast_id=broadcast_id,
            phone="+15552220000",
            wamid="wamid.TEST1",
            params={"1": "Tester"},
            sent_by="U0ANA",
            at=SENT_AT,
        )
    send_in(
        base,
        meta_message("15552220000", "wamid.IN9", "Looks good", T_SENT + 30, context="wamid.TEST1"),
    )
    # Without quoting, the latest test send to that number within the window counts too.
    send_in(base, meta_message("15552220000", "wamid.IN10", "And again", T_SENT + 90))
    drain(runtime)
    contexts = [call.json["broadcast_context"] for call in agent.calls]
    assert len(contexts) == 2 and contexts[0] == contexts[1]
    assert contexts[0] == {
        "broadcast_id": broadcast_id,
        "broadcast_name": "Holiday Sale",
        "template_name": "holiday_promotion",
        "template_content": "Hi {{1}}, check out our special holiday offers!",
        "sent_at": "2026-11-20T10:00:00Z",
        "template_language": "en_US",
        "parameters": {"1": "Tester"},
        "rendered_content": "Hi Tester, check out our special holiday offers!",
        "wamid": "wamid.TEST1",
        "is_test": True,
    }
    with sessions() as s:
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None and stored_counts(broadcast).responded == 0


def test_marketing_preference_webhook_opts_out_and_back_in(
    base: str, runtime: Runtime, sessions: sessionmaker[Session]
) -> None:
    def preference(value: str, ts: int) -> bytes:
        return meta_change(
            "user_preferences",
            {
                "user_preferences": [
                    {
                        "wa_id": "15551119999",
                        "category": "marketing_messages",
                        "value": value,
                        "detail": "User requested",
                        "timestamp": ts,
                    }
                ]
            },
        )

    send_in(base, preference("stop", T_SENT))
    drain(runtime)
    with sessions() as s:
        contact = s.scalar(select(Contact).where(Contact.phone == "+15551119999"))
        assert contact is not None and contact.opted_out_at is not None
    send_in(base, preference("resume", T_SENT + 10))
    drain(runtime)
    with sessions() as s:
        assert s.scalar(select(func.count()).where(Contact.opted_out_at.is_not(None))) == 0


def test_agent_reply_outside_the_24_hour_window_says_why(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_to(sessions, agent.url, ["+15551110000"])
    send_in(base, meta_message("15551110000", "wamid.IN1", "hi", T_SENT + 60))
    drain(runtime)
    conversation_id = agent.calls[0].json["conversation"]["id"]
    with pytest.raises(ValidationFailed, match="24-hour window"):
        agents.send_agent_reply(runtime, conversation_id, "Thanks!", slack_user("U1"))


def test_agent_reply_inside_the_window_is_sent_to_the_contact(
    base: str,
    runtime: Runtime,
    sessions: sessionmaker[Session],
    agent: FakeAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kapso.sandbox import SandboxConfig, run_sandbox

    monkeypatch.delenv("KAPSO_API_KEY", raising=False)
    broadcast_to(sessions, agent.url, ["+15551110000"])
    now = int(datetime.now(UTC).timestamp())
    with run_sandbox(SandboxConfig(latency_ms=0, pair_rate=False)) as sandbox:
        with sessions() as s, s.begin():
            config = s.scalar(select(WhatsAppConfig))
            assert config is not None
            config.api_base_url = sandbox.base_url
        send_in(base, meta_message("15551110000", "wamid.IN1", "Can you call me?", now - 60))
        drain(runtime)
        conversation_id = agent.calls[0].json["conversation"]["id"]
        message = agents.send_agent_reply(
            runtime, conversation_id, "Sure, calling you now", slack_user("U1")
        )
    assert message.wamid and message.direction == "outbound" and message.sent_by == "U1"
    with sessions() as s:
        texts = [m.text for m in s.scalars(select(Message).order_by(Message.id))]
        assert texts == ["Can you call me?", "Sure, calling you now"]
