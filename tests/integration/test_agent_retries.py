"""Agent delivery retries, the same for Slack-thread and webhook agents: a failed attempt sets
when the next one is due, and nothing takes the delivery again before then."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.actors import cli_operator
from bot.slack import agent_threads
from broadcasts import configs
from broadcasts.conversations import add_message, contact_for_sender, open_conversation
from broadcasts.db import transaction
from broadcasts.enums import DeliveryStatus, Direction
from broadcasts.models import Agent, AgentDelivery, utcnow
from jobs import agents
from jobs.delivery_retries import requeue_due
from jobs.queues import AGENTS, queue
from tests.factories import make_config
from tests.fakes.slack_env import SlackEnv, slack_env

AGENTS_CHANNEL = "C0AGENTS"
OPS = cli_operator()
AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def env(db_url: str, redis_url: str) -> Iterator[SlackEnv]:
    with slack_env(db_url, redis_url, agent_max_attempts=3) as e:
        yield e


def pending_delivery(env: SlackEnv, agent: Agent) -> int:
    """An inbound message handed to `agent`, not attempted yet."""
    with transaction(env.runtime.sessions) as session:
        config = make_config(session, with_agent=False)
        contact = contact_for_sender(
            session, wa_id="15551110000", profile_name="Ana", at=AT, phone_hint="+15551110000"
        )
        conversation, _ = open_conversation(
            session,
            config_id=config.id,
            contact_id=contact.id,
            at=AT,
            inactivity_hours=24,
            broadcast_id=None,
            agent_id=agent.id,
        )
        message = add_message(
            session,
            conversation,
            direction=Direction.INBOUND,
            wamid="wamid.IN1",
            type="text",
            text="hi",
            at=AT,
        )
        payload = {
            "idempotency_key": f"key-{agent.id}",
            "conversation": {"id": conversation.id},
            "contact": {"name": "Ana", "phone": "+15551110000"},
            "message": {"kind": "text", "text": "hi"},
        }
        delivery = agents.create_delivery(session, agent, message, payload)
        assert delivery is not None
        return delivery.id


def slack_agent(env: SlackEnv) -> Agent:
    with transaction(env.runtime.sessions) as session:
        agent = configs.add_agent(
            session, name="support", kind="slack", channel_id=AGENTS_CHANNEL, by=OPS
        )
        session.expunge(agent)
        return agent


def delivery_row(env: SlackEnv, delivery_id: int) -> AgentDelivery:
    with env.runtime.sessions() as session:
        delivery = session.get(AgentDelivery, delivery_id)
        assert delivery is not None
        session.expunge(delivery)
        return delivery


def test_a_failed_slack_delivery_is_not_taken_again_before_its_backoff_runs_out(
    env: SlackEnv,
) -> None:
    delivery_id = pending_delivery(env, slack_agent(env))
    env.slack.fail("chat.postMessage", "internal_error")
    before = utcnow()

    assert agent_threads.deliver(delivery_id) == "retrying"

    delivery = delivery_row(env, delivery_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.last_error == "Slack: internal_error"
    # The next attempt is due after the backoff, not at once.
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at > before
    # The recovery pass (which replaces lost jobs) leaves it to its scheduled retry…
    assert requeue_due(env.runtime, grace_seconds=0) == 0
    agents_queue = queue(AGENTS, env.runtime.redis)
    assert agents_queue.count == 0
    assert agents_queue.scheduled_job_registry.get_job_ids() == [f"slack-agent_{delivery_id}_1"]
    # …and takes it once that time has passed (its job was lost).
    with transaction(env.runtime.sessions) as session:
        row = session.get(AgentDelivery, delivery_id)
        assert row is not None
        row.next_attempt_at = before
    assert requeue_due(env.runtime, grace_seconds=0) == 1


def test_a_slack_delivery_retried_to_success_clears_its_error(env: SlackEnv) -> None:
    delivery_id = pending_delivery(env, slack_agent(env))
    env.slack.fail("chat.postMessage", "internal_error")
    assert agent_threads.deliver(delivery_id) == "retrying"
    # The retry is scheduled with backoff; run it now instead of waiting for it.
    assert agent_threads.deliver(delivery_id) == "delivered"
    delivery = delivery_row(env, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.DELIVERED,
        2,
        None,
    )
    assert delivery.next_attempt_at is None
    assert agent_threads.deliver(delivery_id) == "skipped"


def test_a_slack_delivery_fails_after_the_attempt_limit(env: SlackEnv) -> None:
    delivery_id = pending_delivery(env, slack_agent(env))
    env.slack.fail("chat.postMessage", "internal_error", times=3)
    assert [agent_threads.deliver(delivery_id) for _ in range(3)] == [
        "retrying",
        "retrying",
        "failed",
    ]
    delivery = delivery_row(env, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryStatus.FAILED,
        3,
        None,
    )
    assert requeue_due(env.runtime, grace_seconds=0) == 0


def test_a_slack_agent_without_a_channel_fails_at_once(env: SlackEnv) -> None:
    agent = slack_agent(env)
    delivery_id = pending_delivery(env, agent)
    with transaction(env.runtime.sessions) as session:
        row = session.scalar(select(Agent).where(Agent.id == agent.id))
        assert row is not None
        row.channel_id = None
    assert agent_threads.deliver(delivery_id) == "failed"
    delivery = delivery_row(env, delivery_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert delivery.last_error == "the Slack agent has no channel set"
