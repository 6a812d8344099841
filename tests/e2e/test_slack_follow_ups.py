"""Recovering without leaving Slack: edit a draft, a broadcast failing on a revoked key, "Retry
failed", Report in any state, duplicate and the audit trail (fake Slack API, sandbox, workers)."""

from __future__ import annotations

from typing import Any

from bot.slack import card_messages
from bot.slack.blocks import ids
from bot.slack.client import make_client
from broadcasts import configs, service
from broadcasts.db import transaction
from broadcasts.metrics import recount, stored_counts
from broadcasts.models import Broadcast
from jobs.queues import SLACK
from kapso.sandbox.runner import Sandbox, run_sandbox
from tests.e2e.test_slack_flow import (
    APP_SECRET,
    CHANNEL,
    add_main_config,
    sandbox_for,
    texts,
    until,
    work,
    work_queues,
)
from tests.factories import OPERATOR
from tests.fakes import slack_payloads as p
from tests.fakes.slack_env import SlackEnv, slack_env

FIRST = [f"+1415555{n:04d}" for n in range(1001, 1004)]
SECOND = [f"+1415555{n:04d}" for n in range(1004, 1007)]


def _csv(phones: list[str]) -> bytes:
    return ("phone_number,param1\n" + "".join(f"{n},Guest\n" for n in phones)).encode()


def _get(env: SlackEnv, broadcast_id: str) -> Broadcast:
    with transaction(env.runtime.sessions) as session:
        found = session.get(Broadcast, broadcast_id)
        assert found is not None
        assert stored_counts(found) == recount(session, broadcast_id)
        session.expunge(found)
        return found


def _buttons(message_blocks: list[dict[str, Any]]) -> list[str]:
    return [
        e["text"]["text"]
        for blk in message_blocks
        if blk["type"] == "actions"
        for e in blk["elements"]
    ]


def _views(env: SlackEnv, callback_id: str) -> list[dict[str, Any]]:
    return [
        c.params["view"]
        for c in env.slack.calls_to("views.open")
        if c.params["view"]["callback_id"] == callback_id
    ]


def _press(env: SlackEnv, action_id: str, broadcast_id: str, ts: str, opens: str) -> dict[str, Any]:
    """Press a card button and return the modal it opens (a new one, not an earlier one)."""
    before = len(_views(env, opens))
    env.sender.interaction(p.button(action_id, broadcast_id, message_ts=ts))
    views = env.slack.wait_for(lambda: len(_views(env, opens)) > before and _views(env, opens))
    return {**views[-1], "id": "V0MODAL", "hash": "h"}


def test_edit_a_draft_then_retry_a_broadcast_that_failed_on_a_revoked_key(
    db_url: str, redis_url: str
) -> None:
    with (
        slack_env(db_url, redis_url, whatsapp_app_secret=APP_SECRET) as env,
        run_sandbox(sandbox_for(env, read_rate=0.0, reply_rate=0.0)) as sb,
    ):
        with transaction(env.runtime.sessions) as session:
            configs.add_agent(
                session,
                name="support",
                kind="webhook",
                url="http://127.0.0.1:9/a",
                allow_private_urls=True,  # a local agent nobody answers
                by=OPERATOR,
            )
        add_main_config(env, sb, batch_size=500)
        with transaction(env.runtime.sessions) as session:
            draft = service.create_broadcast(
                session,
                name="Holiday Sale",
                config_ref="main",
                template_ref="holiday_promotion",
                by=OPERATOR,
                channel_id=CHANNEL,
            )
            card_messages.post_card(make_client(env.runtime.settings), session, draft, CHANNEL)
            bid, card_ts = draft.id, draft.card_message_id or ""
        run_follow_ups(env, sb, bid, card_ts)


def run_follow_ups(env: SlackEnv, sb: Sandbox, bid: str, card_ts: str) -> None:
    slack, sender = env.slack, env.sender
    for name, phones in (("first.csv", FIRST), ("second.csv", SECOND)):
        file = slack.add_file(name, _csv(phones))
        sender.event(p.file_share(file, channel=CHANNEL, thread_ts=card_ts))
        work(env)
    assert _get(env, bid).total_count == 6
    draft_card = slack.message(CHANNEL, card_ts)
    assert {"Edit…", "Report", "Duplicate", "Send…"} <= set(_buttons(draft_card.blocks))

    # 1. Edit…: a template the recipients lack parameters for is refused on its field.
    view = _press(env, ids.CARD_EDIT, bid, card_ts, ids.EDIT_DRAFT)
    templates = next(b for b in view["blocks"] if b.get("block_id") == ids.B_EDIT_TEMPLATE)
    by_name = {o["text"]["text"].split(" ")[0]: o["value"] for o in templates["element"]["options"]}
    assert templates["element"]["initial_option"]["value"] == by_name["holiday_promotion"]
    undo = next(b for b in view["blocks"] if b.get("block_id") == ids.B_EDIT_IMPORT)
    second = next(o for o in undo["element"]["options"] if "second.csv" in o["text"]["text"])

    def values(**over: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            ids.B_EDIT_NAME: p.text(ids.A_EDIT_NAME, "Holiday Sale"),
            ids.B_EDIT_TEMPLATE: p.select(ids.A_EDIT_TEMPLATE, by_name["holiday_promotion"]),
            ids.B_EDIT_DROP_UNFIT: {ids.A_EDIT_DROP_UNFIT: {"selected_options": []}},
            ids.B_EDIT_PHONES: p.text(ids.A_EDIT_PHONES, None),
            ids.B_EDIT_IMPORT: p.select(ids.A_EDIT_IMPORT, None),
            ids.B_EDIT_ALL: {ids.A_EDIT_ALL: {"selected_options": []}},
        }
        return {**base, **over}

    refused = sender.interaction(
        p.submission(
            view,
            values(**{ids.B_EDIT_TEMPLATE: p.select(ids.A_EDIT_TEMPLATE, by_name["order_update"])}),
        )
    ).json()
    assert refused["response_action"] == "errors"
    refusal = refused["errors"][ids.B_EDIT_TEMPLATE]
    assert "6 recipients do not fit template 'order_update'" in refusal
    assert "Choose to remove the recipients that do not fit" in refusal  # the modal's tick box
    assert _get(env, bid).total_count == 6  # nothing changed

    # 2. Rename, undo the second file and drop one number, all in one save.
    answer = sender.interaction(
        p.submission(
            view,
            values(
                **{
                    ids.B_EDIT_NAME: p.text(ids.A_EDIT_NAME, "Winter Sale"),
                    ids.B_EDIT_IMPORT: p.select(ids.A_EDIT_IMPORT, second["value"]),
                    ids.B_EDIT_PHONES: p.text(ids.A_EDIT_PHONES, FIRST[0]),
                }
            ),
        )
    )
    assert answer.status_code == 200 and not answer.content
    edited = _get(env, bid)
    assert (edited.name, edited.total_count) == ("Winter Sale", 2)
    card = slack.message(CHANNEL, card_ts)
    assert "Winter Sale" in card.text and "2 recipients" in card.text
    notes = [m.text for m in slack.messages_in(CHANNEL, card_ts)]
    assert any("edited the draft" in n and "undid import" in n for n in notes), notes

    # 3. Sending with a revoked key fails the broadcast; recipients stay unsent.
    sb.revoke_key()
    confirm = _press(env, ids.CARD_SEND, bid, card_ts, ids.SEND_CONFIRM)
    assert sender.interaction(p.submission(confirm, {})).status_code == 200
    until(env, lambda: _get(env, bid).status == "failed", "the broadcast failing")
    work_queues(env, SLACK)
    failed_card = slack.message(CHANNEL, card_ts)
    assert _buttons(failed_card.blocks) == ["Report", "Retry failed…", "Duplicate"]
    assert not sb.messages()

    # 4. Retry failed…: a new draft with both recipients, its own card, a note under the original.
    sb.restore_key()
    preview = _press(env, ids.CARD_RETRY, bid, card_ts, ids.RETRY_CONFIRM)
    shown = texts(preview["blocks"])
    assert "*2 recipients* to retry" in shown and "2 never attempted" in shown
    assert _retry_of(env, bid) is None  # nothing is made before the confirmation
    assert sender.interaction(p.submission(preview, {})).status_code == 200
    done = slack.wait_for(
        lambda: [
            c.params["view"]
            for c in slack.calls_to("views.update")
            if "Retry draft made" in str(c.params["view"])
        ]
    )
    assert "Winter Sale (retry)" in texts(done[0]["blocks"])
    retry = until(
        env,
        lambda: _retry_of(env, bid),
        "the retry draft",
    )
    assert (retry.name, retry.status, retry.total_count) == ("Winter Sale (retry)", "draft", 2)
    retry_card = slack.message(CHANNEL, retry.card_message_id or "")
    assert "Winter Sale (retry)" in retry_card.text
    notes = [m.text for m in slack.messages_in(CHANNEL, card_ts)]
    assert any(
        "draft retry: 2 to retry (0 failed with a retryable error, 2 never" in n for n in notes
    )

    # 5. Report works on a draft too: the CSV lands in the retry's thread.
    sender.interaction(p.button(ids.CARD_REPORT, retry.id, message_ts=retry.card_message_id))
    until(env, lambda: slack.uploads_in(CHANNEL, retry.card_message_id), "the draft's report")

    # 6. Sending the retry reaches both, once each; the original stays failed.
    confirm = _press(env, ids.CARD_SEND, retry.id, retry.card_message_id or "", ids.SEND_CONFIRM)
    assert "*2 recipients*" in texts(confirm["blocks"])
    assert sender.interaction(p.submission(confirm, {})).status_code == 200
    until(env, lambda: _get(env, retry.id).status == "completed", "the retry completing")
    assert sorted(m["to"] for m in sb.messages()) == sorted(n.lstrip("+") for n in FIRST[1:])
    assert _get(env, bid).status == "failed"

    # 7. /broadcast duplicate and /broadcast audit.
    assert sender.command(f"duplicate {bid[:8]}", channel=CHANNEL).status_code == 200
    copy = until(env, lambda: _named(env, "Winter Sale (copy)"), "the duplicate")
    assert copy.total_count == 2 and copy.card_message_id
    reply = slack.wait_for(lambda: [r for r in slack.state.responses if "duplicated" in str(r)])
    assert "with 2 recipients" in reply[0]["text"]
    answer = sender.command(f"audit {bid[:8]}", channel=CHANNEL)
    trail = texts(answer.json()["blocks"])
    for phrase in ("created it with template", "removed 1 recipients", "edited it", "it failed"):
        assert phrase in trail, phrase
    assert "made a retry draft with 2 recipients" in trail
    assert "duplicated it with 2 recipients" in trail
    assert "Say which broadcast" in sender.command("retry", channel=CHANNEL).json()["text"]
    read_only = sender.command(f"edit {bid[:8]}", channel=CHANNEL).json()["text"]
    assert read_only == "Broadcast 'Winter Sale' is failed; it is read-only."
    retry_again = sender.command(f"retry {bid[:8]}", channel=CHANNEL)
    assert retry_again.status_code == 200
    refusal = slack.wait_for(
        lambda: [r for r in slack.state.responses if "Nothing to retry" in str(r)]
    )
    assert "already in an earlier retry" in refusal[0]["text"]


def _retry_of(env: SlackEnv, broadcast_id: str) -> Broadcast | None:
    with transaction(env.runtime.sessions) as session:
        found = session.query(Broadcast).filter(Broadcast.retry_of_id == broadcast_id).first()
        if found is not None:
            session.expunge(found)
        return found


def _named(env: SlackEnv, name: str) -> Broadcast | None:
    with transaction(env.runtime.sessions) as session:
        found = session.query(Broadcast).filter(Broadcast.name == name).first()
        if found is not None:
            session.expunge(found)
        return found
