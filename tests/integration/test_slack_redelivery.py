"""Slack retries and deadlines against our real server: nothing reaches a customer twice, and
slow WhatsApp calls happen after the ack."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.slack.blocks import ids
from broadcasts import service
from broadcasts.db import transaction
from broadcasts.models import Contact, Conversation, WhatsAppConfig, utcnow
from kapso.sandbox import SandboxConfig, run_sandbox
from kapso.sandbox.runner import Sandbox
from tests.factories import OPERATOR, make_config
from tests.fakes import slack_payloads as p
from tests.fakes.slack_env import SlackEnv, slack_env

AGENT_CHANNEL = "C0AGENTS"
THREAD_TS = "1700000000.000100"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    # 3.5 s per WhatsApp answer: slower than Slack's 3 s deadline.
    with run_sandbox(SandboxConfig(latency_ms=3500, latency_jitter=0, pair_rate=False)) as sb:
        yield sb


@pytest.fixture
def env(db_url: str, redis_url: str, sandbox: Sandbox) -> Iterator[SlackEnv]:
    with slack_env(db_url, redis_url) as e:
        with transaction(e.runtime.sessions) as session:
            config = make_config(session, "main", display_phone_number="+1 555 0100")
            config.provider = "sandbox"
            config.api_base_url = sandbox.base_url
        yield e


def conversation_thread(env: SlackEnv, phone: str = "+15557770001") -> str:
    """A customer wrote an hour ago; their conversation is a thread in the agents' channel."""
    with transaction(env.runtime.sessions) as session:
        config = session.query(WhatsAppConfig).one()
        contact = Contact(phone=phone, wa_id=phone.lstrip("+"), source="whatsapp", attributes={})
        session.add(contact)
        session.flush()
        an_hour_ago = utcnow() - timedelta(hours=1)
        conversation = Conversation(
            config_id=config.id,
            contact_id=contact.id,
            channel_id=AGENT_CHANNEL,
            thread_id=THREAD_TS,
            started_at=an_hour_ago,
            last_message_at=an_hour_ago,
            last_inbound_at=an_hour_ago,
        )
        session.add(conversation)
        return phone.lstrip("+")


def thread_message(ts: str, text: str) -> dict[str, object]:
    """A teammate's message in a thread, as Slack's `message` event carries it."""
    return {
        "type": "message",
        "channel": AGENT_CHANNEL,
        "channel_type": "channel",
        "user": "U0AGENT",
        "text": text,
        "ts": ts,
        "thread_ts": THREAD_TS,
        "event_ts": ts,
    }


def test_an_event_delivered_three_times_reaches_the_customer_once(
    env: SlackEnv, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack.listeners.events")
    to = conversation_thread(env)
    replies = env.sender.redeliver(thread_message("1700000100.000200", "On my way"), times=3)
    assert [r.status_code for r in replies] == [200, 200, 200]  # acked at once, every time
    env.slack.wait_for(lambda: env.slack.calls_to("reactions.add"), timeout=30)
    env.slack.wait_for(
        lambda: sum("already handled" in r.getMessage() for r in caplog.records) == 2, timeout=30
    )
    assert [m["text"] for m in sandbox.messages(to=to)] == ["On my way"]


def test_the_same_message_under_a_new_event_id_is_not_sent_again(
    env: SlackEnv, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack.listeners.events")
    to = conversation_thread(env)
    message = thread_message("1700000100.000300", "See you at 5")
    env.sender.redeliver(message, times=1, event_id="Ev0FIRST")
    env.slack.wait_for(lambda: env.slack.calls_to("reactions.add"), timeout=30)
    env.sender.redeliver(message, times=1, event_id="Ev0SECOND")
    env.slack.wait_for(lambda: any("already handled" in r.getMessage() for r in caplog.records))
    second = thread_message("1700000100.000400", "Bring the receipt")  # a new message is sent
    env.sender.redeliver(second, times=1)
    env.slack.wait_for(lambda: len(env.slack.calls_to("reactions.add")) == 2, timeout=30)
    assert [m["text"] for m in sandbox.messages(to=to)] == ["See you at 5", "Bring the receipt"]


def send_test_view(env: SlackEnv, broadcast_id: str) -> dict[str, object]:
    from bot.slack import flows

    view = flows.send_test_modal(env.runtime, broadcast_id)
    return dict(view, id="V0TEST", hash="h0")


def test_a_test_send_to_a_slow_whatsapp_api_is_acked_before_the_call(
    env: SlackEnv, sandbox: Sandbox
) -> None:
    with transaction(env.runtime.sessions) as session:
        broadcast = service.create_broadcast(
            session, name="Slow", config_ref="main", template_ref="holiday_promotion", by=OPERATOR
        )
        broadcast_id = broadcast.id
    view = send_test_view(env, broadcast_id)
    param_block = next(
        b["block_id"] for b in view["blocks"] if str(b.get("block_id", "")).startswith(ids.B_PARAM)
    )
    values = {
        ids.B_PHONE: p.text(ids.A_PHONE, "+14155550123"),
        param_block: p.text(ids.A_PARAM, "Ana"),
    }
    reply = env.sender.interaction(p.submission(view, values)).json()
    # The answer to the submission is the "sending" notice: WhatsApp had not answered yet.
    assert reply["response_action"] == "update", reply
    assert "Sending the test" in json.dumps(reply["view"])
    update = env.slack.wait_for(
        lambda: [
            c for c in env.slack.calls_to("views.update") if "Test sent" in json.dumps(c.params)
        ],
        timeout=30,
    )[-1]
    assert update.params["view_id"] == "V0TEST"
    assert [m["to"] for m in sandbox.messages()] == ["14155550123"]


def test_a_missing_test_parameter_is_shown_on_its_field_without_calling_whatsapp(
    env: SlackEnv, sandbox: Sandbox
) -> None:
    with transaction(env.runtime.sessions) as session:
        broadcast = service.create_broadcast(
            session, name="Slow", config_ref="main", template_ref="holiday_promotion", by=OPERATOR
        )
        broadcast_id = broadcast.id
    view = send_test_view(env, broadcast_id)
    reply = env.sender.interaction(
        p.submission(view, {ids.B_PHONE: p.text(ids.A_PHONE, "+14155550124")})
    ).json()
    assert reply["response_action"] == "errors"
    assert sandbox.messages() == []


def test_an_answer_to_a_user_who_hides_their_number_goes_to_their_user_id(
    env: SlackEnv, sandbox: Sandbox
) -> None:
    from kapso.sandbox.emitter import user_id_for

    hidden = "14155550177"
    sandbox.inbound(hidden, "Hi, it's me")  # the sandbox now knows who is behind the user id
    with transaction(env.runtime.sessions) as session:
        config = session.query(WhatsAppConfig).one()
        contact = Contact(phone=None, user_id=user_id_for(hidden), source="whatsapp")
        contact.attributes = {}
        session.add(contact)
        session.flush()
        recent = utcnow() - timedelta(minutes=5)
        session.add(
            Conversation(
                config_id=config.id,
                contact_id=contact.id,
                channel_id=AGENT_CHANNEL,
                thread_id=THREAD_TS,
                started_at=recent,
                last_message_at=recent,
                last_inbound_at=recent,
            )
        )
    env.sender.redeliver(thread_message("1700000100.000500", "Your order is ready"), times=1)
    env.slack.wait_for(lambda: env.slack.calls_to("reactions.add"), timeout=30)
    assert [m["text"] for m in sandbox.messages(to=hidden)] == ["Your order is ready"]


def test_without_redis_a_thread_reply_is_not_sent_and_the_teammate_is_told(
    db_url: str, sandbox: Sandbox
) -> None:
    with slack_env(db_url, "redis://127.0.0.1:9/0") as env:  # nothing listens there
        with transaction(env.runtime.sessions) as session:
            config = make_config(session, "main", display_phone_number="+1 555 0100")
            config.provider, config.api_base_url = "sandbox", sandbox.base_url
        to = conversation_thread(env)
        env.sender.redeliver(thread_message("1700000100.000600", "Hello?"), times=1)
        told = env.slack.wait_for(lambda: env.slack.calls_to("chat.postEphemeral"), timeout=30)
        assert "cannot reach Redis" in told[-1].params["text"]
        assert sandbox.messages(to=to) == []
