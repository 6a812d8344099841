"""Slack over HTTP: signed requests to our real server, the fake Slack API answering the bot."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from bot.slack.blocks import ids
from broadcasts import service
from broadcasts.db import transaction
from broadcasts.models import Broadcast
from tests.factories import OPERATOR, make_config
from tests.fakes import slack_payloads as p
from tests.fakes.slack_env import SlackEnv, slack_env


@pytest.fixture
def env(db_url: str, redis_url: str) -> Iterator[SlackEnv]:
    with slack_env(db_url, redis_url) as e:
        with transaction(e.runtime.sessions) as session:
            make_config(session, "main", display_phone_number="+1 555 0100")
        yield e


def open_new_modal(env: SlackEnv) -> dict:
    assert env.sender.command("new").status_code == 200
    call = env.slack.wait_for(lambda: env.slack.calls_to("views.open"))[-1]
    view = call.params["view"]
    return dict(view, id="V0NEW", hash="h0")


def fill(view: dict, *, template: str | None, name: str = "Holiday Sale") -> dict:
    """State values of the new-broadcast modal as a user would leave them."""
    tblock = next(
        b["block_id"] for b in view["blocks"] if b.get("block_id", "").startswith("template_")
    )
    config_id = json.loads(view["private_metadata"])["config"]
    return {
        ids.B_NAME: p.text(ids.A_NAME, name),
        ids.B_CONFIG: p.select(ids.A_CONFIG, str(config_id)),
        tblock: p.select(ids.A_TEMPLATE, template),
        ids.B_CHANNEL: p.conversation(ids.A_CHANNEL, "C0CAMP"),
        ids.B_RATE: p.number(ids.A_RATE, None),
        ids.B_BATCH_SIZE: p.number(ids.A_BATCH_SIZE, None),
        ids.B_BATCH_PAUSE: p.number(ids.A_BATCH_PAUSE, None),
    }


def test_requests_with_a_forged_or_stale_signature_are_refused(env: SlackEnv) -> None:
    assert env.sender.command("help", secret="not-the-secret").status_code == 401
    stale = int(time.time()) - 600
    assert env.sender.command("help", timestamp=stale).status_code == 401


def test_help_answers_with_every_subcommand(env: SlackEnv) -> None:
    reply = env.sender.command("help")
    assert reply.status_code == 200
    text = reply.json()["text"]
    for verb in ("new", "list", "status", "pause", "resume", "cancel", "report", "templates"):
        assert f"/broadcast {verb}" in text


def test_unknown_subcommand_is_explained(env: SlackEnv) -> None:
    reply = env.sender.command("frobnicate")
    assert "Unknown subcommand 'frobnicate'" in reply.json()["text"]


def test_new_opens_a_modal_with_the_only_configuration_and_its_agent(env: SlackEnv) -> None:
    view = open_new_modal(env)
    assert view["callback_id"] == ids.NEW_BROADCAST
    agent = next(b for b in view["blocks"] if b.get("block_id") == ids.B_AGENT)
    assert "main-agent" in agent["text"]["text"]
    channel = next(b for b in view["blocks"] if b.get("block_id") == ids.B_CHANNEL)
    assert channel["element"]["initial_conversation"] == "C0CAMP"


def test_template_options_list_only_approved_templates_of_the_configuration(env: SlackEnv) -> None:
    view = open_new_modal(env)
    reply = env.sender.interaction(p.block_suggestion(ids.A_TEMPLATE, view))
    names = [o["text"]["text"] for o in reply.json()["options"]]
    assert names == ["holiday_promotion (en_US)"]
    searched = env.sender.interaction(p.block_suggestion(ids.A_TEMPLATE, view, "nothing"))
    assert searched.json()["options"] == []


def test_choosing_a_template_redraws_the_modal_with_its_preview(env: SlackEnv) -> None:
    view = open_new_modal(env)
    option = env.sender.interaction(p.block_suggestion(ids.A_TEMPLATE, view)).json()["options"][0]
    values = fill(view, template=option["value"])
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ANA"},
        "view": {**view, "state": {"values": values}},
        "trigger_id": "t",
        "actions": [
            {"type": "external_select", "action_id": ids.A_TEMPLATE, "selected_option": option}
        ],
    }
    assert env.sender.interaction(payload).status_code == 200
    update = env.slack.wait_for(lambda: env.slack.calls_to("views.update"))[-1]
    preview = next(b for b in update.params["view"]["blocks"] if b.get("block_id") == ids.B_PREVIEW)
    assert "check out our special holiday offers" in preview["text"]["text"]


def test_submitting_without_a_template_shows_the_error_on_the_field(env: SlackEnv) -> None:
    view = open_new_modal(env)
    reply = env.sender.interaction(p.submission(view, fill(view, template=None)))
    body = reply.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"].values()) == ["Choose an approved template."]


def test_submitting_creates_the_draft_and_posts_its_card(env: SlackEnv) -> None:
    view = open_new_modal(env)
    option = env.sender.interaction(p.block_suggestion(ids.A_TEMPLATE, view)).json()["options"][0]
    reply = env.sender.interaction(p.submission(view, fill(view, template=option["value"])))
    assert reply.status_code == 200 and reply.content in (b"", b"{}")
    env.slack.wait_for(lambda: env.slack.messages_in("C0CAMP"))  # posted after the ack

    def card_saved() -> bool:
        with transaction(env.runtime.sessions) as session:
            return session.query(Broadcast).one().card_message_id is not None

    env.slack.wait_for(card_saved)
    with transaction(env.runtime.sessions) as session:
        broadcast = session.query(Broadcast).one()
        assert broadcast.name == "Holiday Sale" and broadcast.created_by == "U0ANA"
        card = env.slack.message("C0CAMP", broadcast.card_message_id or "")
    texts = json.dumps(card.blocks)
    assert "Drop a CSV into this thread" in texts
    actions = next(b for b in card.blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        ids.CARD_ADD_CONTACTS,
        ids.CARD_CSV_TEMPLATE,
        ids.CARD_SEND_TEST,
        ids.CARD_SEND,
        ids.CARD_SCHEDULE,
        ids.CARD_EDIT,
        ids.CARD_REPORT,
        ids.CARD_DUPLICATE,
        ids.CARD_CANCEL,
    ]


def test_a_configuration_without_primary_agent_is_refused_on_its_field(env: SlackEnv) -> None:
    with transaction(env.runtime.sessions) as session:
        make_config(session, "lonely", with_agent=False, phone_number_id="555")
    view = open_new_modal(env)
    lonely = next(
        o for o in view["blocks"][1]["element"]["options"] if o["text"]["text"] == "lonely"
    )
    view["private_metadata"] = json.dumps({"channel": "C0CAMP", "config": int(lonely["value"])})
    view["blocks"].append({"type": "input", "block_id": f"template_{lonely['value']}"})
    values = fill(view, template="1")
    reply = env.sender.interaction(p.submission(view, values)).json()
    assert reply["response_action"] == "errors"
    assert "has no primary agent" in reply["errors"][ids.B_CONFIG]


def test_a_channel_the_bot_is_not_in_removes_the_draft_and_says_why(env: SlackEnv) -> None:
    view = open_new_modal(env)
    option = env.sender.interaction(p.block_suggestion(ids.A_TEMPLATE, view)).json()["options"][0]
    env.slack.fail("chat.postMessage", "not_in_channel")
    reply = env.sender.interaction(p.submission(view, fill(view, template=option["value"])))
    assert reply.status_code == 200  # acked before the card's Slack round trip
    told = env.slack.wait_for(lambda: env.slack.messages_in("U0ANA"))
    assert "Invite me there" in told[-1].text and "not kept" in told[-1].text
    with transaction(env.runtime.sessions) as session:
        assert session.query(Broadcast).count() == 0


def test_list_and_status_reply_ephemerally(env: SlackEnv) -> None:
    with transaction(env.runtime.sessions) as session:
        service.create_broadcast(
            session, name="Spring", config_ref="main", template_ref="holiday_promotion", by=OPERATOR
        )
    listing = env.sender.command("list").json()
    assert "Spring" in json.dumps(listing["blocks"])
    status = env.sender.command("status Spring").json()
    assert "Draft" in json.dumps(status["blocks"])
    missing = env.sender.command("status nope").json()
    # The domain names the action; Slack says how in Slack's terms, never with the CLI.
    assert missing["text"] == "No broadcast 'nope'. `/broadcast list` shows them."


def test_the_app_home_lists_recent_broadcasts_with_their_metrics(env: SlackEnv) -> None:
    with transaction(env.runtime.sessions) as session:
        service.create_broadcast(
            session, name="Spring", config_ref="main", template_ref="holiday_promotion", by=OPERATOR
        )
    event = {"type": "app_home_opened", "user": "U0ANA", "channel": "D0HOME", "tab": "home"}
    assert env.sender.event(event).status_code == 200
    call = env.slack.wait_for(lambda: env.slack.calls_to("views.publish"))[0]
    assert call.params["user_id"] == "U0ANA"
    home = json.dumps(call.params["view"]["blocks"], ensure_ascii=False)
    assert "*Spring*" in home and "response rate 0.0%" in home
