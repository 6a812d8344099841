"""Broadcast events in Slack: throttled card edits, final state always shown, thread notes, 429s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot import cards, notifications
from bot.slack_client import make_client
from bot.throttle import CardThrottle
from broadcasts import service
from broadcasts.actors import Actor
from broadcasts.db import transaction
from tests.factories import add_recipients, make_broadcast
from tests.fakes.slack_env import SlackEnv, slack_env

ANA = Actor.slack("U0ANA")


@pytest.fixture
def env(db_url: str, redis_url: str) -> Iterator[SlackEnv]:
    # A window no test run outlasts, so "throttled" never depends on how fast the machine is.
    with slack_env(db_url, redis_url, slack_card_update_seconds=3600) as e:
        yield e


@pytest.fixture
def sending(env: SlackEnv) -> tuple[str, str, str]:
    client = make_client(env.runtime.settings)
    with transaction(env.runtime.sessions) as session:
        broadcast = make_broadcast(session)
        add_recipients(session, broadcast, ["+14155550101", "+14155550102"])
        ts = cards.post_card(client, session, broadcast, "C0CAMP")
        service.start_broadcast(session, broadcast.id, by=ANA)
        return broadcast.id, "C0CAMP", ts


def test_progress_edits_are_throttled_per_card(
    env: SlackEnv, sending: tuple[str, str, str]
) -> None:
    broadcast_id, channel, ts = sending
    for _ in range(5):
        notifications.handle_event(broadcast_id, "progress", {})
    assert env.slack.message(channel, ts).edits == 1
    assert "Sending" in env.slack.message(channel, ts).text


def test_status_changes_always_edit_the_card_and_name_who_acted(
    env: SlackEnv, sending: tuple[str, str, str]
) -> None:
    broadcast_id, channel, ts = sending
    notifications.handle_event(broadcast_id, "progress", {})
    notifications.handle_event(broadcast_id, "started", {"by": "U0ANA", "via": "slack"})
    with transaction(env.runtime.sessions) as session:
        service.pause_broadcast(session, broadcast_id, by=ANA)
    notifications.handle_event(broadcast_id, "paused", {"by": "U0ANA", "via": "slack"})
    card = env.slack.message(channel, ts)
    assert card.edits == 3
    actions = next(b for b in card.blocks if b["type"] == "actions")
    assert [e["text"]["text"] for e in actions["elements"]] == ["Resume", "Report", "Cancel"]
    notes = [m.text for m in env.slack.messages_in(channel, ts)]
    assert notes[0].startswith("🚀 Started by <@U0ANA>: 2 recipients")
    assert notes[1] == "⏸️ Paused by <@U0ANA>."


def test_an_automatic_pause_is_an_alert_in_the_thread(
    env: SlackEnv, sending: tuple[str, str, str]
) -> None:
    broadcast_id, channel, ts = sending
    reason = "Template 'holiday_promotion' (en_US) was paused by WhatsApp."
    notifications.handle_event(broadcast_id, "paused", {"reason": reason})
    [note] = [m.text for m in env.slack.messages_in(channel, ts)]
    assert note.startswith("⚠️ Sending was paused automatically: Template 'holiday_promotion'")


def test_the_final_state_is_shown_even_right_after_a_progress_edit(
    env: SlackEnv, sending: tuple[str, str, str]
) -> None:
    broadcast_id, channel, ts = sending
    notifications.handle_event(broadcast_id, "progress", {})
    with transaction(env.runtime.sessions) as session:
        service.cancel_broadcast(session, broadcast_id, by=ANA)
    notifications.handle_event(broadcast_id, "cancelled", {"by": "U0ANA", "skipped": 2})
    card = env.slack.message(channel, ts)
    assert card.edits == 2 and "Cancelled" in card.text
    actions = next(b for b in card.blocks if b["type"] == "actions")
    assert [e["text"]["text"] for e in actions["elements"]] == [
        "Report",
        "Retry failed…",
        "Duplicate",
    ]
    notes = [m.text for m in env.slack.messages_in(channel, ts)]
    assert notes == ["🚫 Cancelled by <@U0ANA>; 2 recipients not reached were skipped."]


def test_a_rate_limited_edit_is_retried_after_retry_after(
    env: SlackEnv, sending: tuple[str, str, str]
) -> None:
    broadcast_id, channel, ts = sending
    env.slack.rate_limit("chat.update", times=2, retry_after=0)
    notifications.handle_event(broadcast_id, "started", {"by": "U0ANA"})
    assert len(env.slack.calls_to("chat.update")) == 3
    assert env.slack.message(channel, ts).edits == 1


def test_the_workspace_budget_is_shared_by_every_card(env: SlackEnv, redis_url: str) -> None:
    throttle = CardThrottle(env.runtime.redis, per_minute=3)
    allowed = [throttle.try_acquire(f"b{i}") for i in range(5)]
    assert allowed == [True, True, True, False, False]
    assert throttle.try_acquire("b0") is False  # and each card waits its turn


def test_events_of_broadcasts_without_a_card_change_nothing(env: SlackEnv) -> None:
    with transaction(env.runtime.sessions) as session:
        broadcast_id = make_broadcast(session).id
    notifications.handle_event(broadcast_id, "completed", {})
    assert env.slack.calls_to("chat.update") == []
