"""The card's buttons and their modals, with BROADCAST_ADMINS restricting who may send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.slack import card_messages
from bot.slack.blocks import ids
from bot.slack.client import make_client
from broadcasts import configs
from broadcasts.db import transaction
from broadcasts.models import AuditEntry, Broadcast
from tests.factories import add_recipients, make_broadcast
from tests.fakes import slack_payloads as p
from tests.fakes.slack_env import SlackEnv, slack_env


@pytest.fixture
def env(db_url: str, redis_url: str) -> Iterator[SlackEnv]:
    with slack_env(db_url, redis_url, broadcast_admins="U0BOSS,S0ADMINS") as e:
        e.slack.set_usergroup("S0ADMINS", ["U0ANA"])
        yield e


@pytest.fixture
def draft(env: SlackEnv) -> tuple[str, str, str]:
    client = make_client(env.runtime.settings)
    with transaction(env.runtime.sessions) as session:
        broadcast = make_broadcast(session)
        add_recipients(session, broadcast, ["+14155550101", "+14155550102", "+14155550103"])
        ts = card_messages.post_card(client, session, broadcast, "C0CAMP")
        return broadcast.id, "C0CAMP", ts


def status(env: SlackEnv, broadcast_id: str) -> str:
    with transaction(env.runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return broadcast.status


def press(env: SlackEnv, action: str, broadcast_id: str, user: str = "U0ANA") -> None:
    assert env.sender.interaction(p.button(action, broadcast_id, user=user)).status_code == 200


def test_someone_outside_the_admins_gets_an_ephemeral_explanation(
    env: SlackEnv, draft: tuple[str, str, str]
) -> None:
    broadcast_id, channel, _ = draft
    press(env, ids.CARD_SEND, broadcast_id, user="U0EVE")
    call = env.slack.wait_for(lambda: env.slack.calls_to("chat.postEphemeral"))[0]
    assert call.params["user"] == "U0EVE" and call.params["channel"] == channel
    assert call.params["text"].startswith("Only broadcast admins can send a broadcast")
    assert env.slack.calls_to("views.open") == []


def test_send_shows_count_rendered_message_duration_and_warnings_then_starts(
    env: SlackEnv, draft: tuple[str, str, str]
) -> None:
    broadcast_id, _, _ = draft
    press(env, ids.CARD_SEND, broadcast_id)  # U0ANA is an admin through the S0ADMINS group
    view = env.slack.wait_for(lambda: env.slack.calls_to("views.open"))[0].params["view"]
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "*3 recipients*" in text
    assert "Hi Ana, check out our special holiday offers!" in text
    assert "Estimated time: under 1 s at 50 msg/s" in text  # the seed's pace until read
    assert "in batches of 500, 10 s apart" in text
    assert "Recipients by country: +1 US 3" in text
    assert "*marketing* template" in text
    assert "messaging limit is not known yet" in text
    reply = env.sender.interaction(p.submission(view, {}, user="U0ANA"))
    assert reply.status_code == 200
    with transaction(env.runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None and broadcast.status == "sending"
        audit = session.query(AuditEntry).filter_by(action="broadcast.start").one()
        assert (audit.actor, audit.via) == ("U0ANA", "slack")


def test_send_warns_when_recipients_exceed_the_numbers_messaging_limit(
    env: SlackEnv, draft: tuple[str, str, str]
) -> None:
    broadcast_id, _, _ = draft
    with transaction(env.runtime.sessions) as session:
        limits = configs.Limits("STANDARD", 80, "TIER_2")  # a tier below the 3 recipients
        configs.record_limits(session, "main", limits)
    press(env, ids.CARD_SEND, broadcast_id)
    view = env.slack.wait_for(lambda: env.slack.calls_to("views.open"))[0].params["view"]
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "3 recipients is more than this number's messaging limit (TIER_2: 2 people" in text
    assert "at 80 msg/s" in text  # the rate followed the STANDARD level
    assert "not known yet" not in text


def test_a_failed_start_replaces_the_confirmation_with_the_reason(
    env: SlackEnv, draft: tuple[str, str, str]
) -> None:
    broadcast_id, _, _ = draft
    press(env, ids.CARD_SEND, broadcast_id)
    view = env.slack.wait_for(lambda: env.slack.calls_to("views.open"))[0].params["view"]
    press(env, ids.CARD_CANCEL, broadcast_id)
    env.slack.wait_for(lambda: status(env, broadcast_id) == "cancelled")
    reply = env.sender.interaction(p.submission(view, {})).json()
    assert reply["response_action"] == "update"
    assert "cancelled" in reply["view"]["blocks"][0]["text"]["text"]


def test_schedule_in_the_past_is_refused_on_the_picker(
    env: SlackEnv, draft: tuple[str, str, str]
) -> None:
    broadcast_id, _, _ = draft
    env.slack.set_user("U0ANA", tz="Europe/Madrid")
    press(env, ids.CARD_SCHEDULE, broadcast_id)
    view = env.slack.wait_for(lambda: env.slack.calls_to("views.open"))[0].params["view"]
    assert "Europe/Madrid" in json.dumps(view)
    past = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    values = {ids.B_WHEN: {ids.A_WHEN: {"type": "datetimepicker", "selected_date_time": past}}}
    reply = env.sender.interaction(p.submission(view, values)).json()
    assert reply["response_action"] == "errors"
    assert "is in the past" in reply["errors"][ids.B_WHEN]
    future = int((datetime.now(UTC) + timedelta(days=1)).timestamp())
    values = {ids.B_WHEN: {ids.A_WHEN: {"type": "datetimepicker", "selected_date_time": future}}}
    assert env.sender.interaction(p.submission(view, values)).status_code == 200
    with transaction(env.runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None and broadcast.status == "scheduled"
        assert broadcast.scheduled_at == datetime.fromtimestamp(future, UTC)


def test_csv_template_uploads_the_header_into_the_thread(
    env: SlackEnv, draft: tuple[str, str, str]
) -> None:
    broadcast_id, channel, ts = draft
    press(env, ids.CARD_CSV_TEMPLATE, broadcast_id, user="U0EVE")
    env.slack.wait_for(lambda: env.slack.calls_to("files.completeUploadExternal"))
    [upload] = env.slack.uploads_in(channel, ts)
    assert upload.filename == "holiday_promotion_recipients.csv"
    assert upload.content.decode().splitlines()[0] == "phone_number,param1"


def test_pause_from_a_command_is_refused_for_a_draft_with_a_sentence(
    env: SlackEnv, draft: tuple[str, str, str]
) -> None:
    broadcast_id, _, _ = draft
    reply = env.sender.command(f"pause {broadcast_id[:8]}").json()
    assert reply["text"] == (
        "Broadcast 'Holiday Sale' is draft; it cannot be paused (it has not started sending)."
    )
    reply = env.sender.command(f"resume {broadcast_id[:8]}", user="U0EVE").json()
    assert reply["text"].startswith("Only broadcast admins can resume")


def test_add_contacts_offers_all_eligible_and_leaves_out_test_and_opted_out(
    env: SlackEnv, draft: tuple[str, str, str]
) -> None:
    from broadcasts.contacts import ContactData, set_opt_out, upsert_contacts

    broadcast_id, channel, ts = draft
    with transaction(env.runtime.sessions) as session:
        upsert_contacts(
            session,
            [
                ContactData("+14155550201", name="Zoe", attributes={"param1": "Zoe"}),
                ContactData("+14155550202", name="Tess", attributes={"1": "T"}, is_test=True),
                ContactData("+14155550203", name="Olga", attributes={"1": "O"}),
            ],
        )
        set_opt_out(session, "+14155550203", opted_out=True, reason="STOP")
    press(env, ids.CARD_ADD_CONTACTS, broadcast_id, user="U0EVE")
    view = env.slack.wait_for(lambda: env.slack.calls_to("views.open"))[0].params["view"]
    assert "Select all eligible contacts (1)" in json.dumps(view)
    options = env.sender.interaction(p.block_suggestion(ids.A_CONTACTS, view)).json()["options"]
    assert [o["text"]["text"] for o in options] == ["Zoe +14155550201"]
    values = {
        ids.B_CONTACTS: {ids.A_CONTACTS: {"type": "multi_external_select", "selected_options": []}},
        ids.B_ALL_ELIGIBLE: {
            ids.A_ALL_ELIGIBLE: {"type": "checkboxes", "selected_options": [{"value": "all"}]}
        },
    }
    assert env.sender.interaction(p.submission(view, values, user="U0EVE")).status_code == 200
    note = env.slack.wait_for(lambda: env.slack.messages_in(channel, ts))[0]
    assert note.text.startswith("👥 <@U0EVE> added 1 contacts (4 recipients now).")
    empty = {
        ids.B_CONTACTS: {ids.A_CONTACTS: {"type": "multi_external_select", "selected_options": []}},
        ids.B_ALL_ELIGIBLE: {ids.A_ALL_ELIGIBLE: {"type": "checkboxes", "selected_options": []}},
    }
    reply = env.sender.interaction(p.submission(view, empty)).json()
    assert reply["response_action"] == "errors" and ids.B_CONTACTS in reply["errors"]
