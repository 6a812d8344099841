"""Follow-up buttons and the edit modal refusing what their broadcast's state does not allow."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.slack import card_messages
from bot.slack.blocks import ids
from bot.slack.client import make_client
from broadcasts import service
from broadcasts.db import transaction
from broadcasts.models import Broadcast, Recipient, utcnow
from tests.factories import OPERATOR, add_recipients, make_broadcast
from tests.fakes import slack_payloads as p
from tests.fakes.slack_env import SlackEnv, slack_env

PHONES = ["+14155550101", "+14155550102", "+14155550103"]


@pytest.fixture
def env(db_url: str, redis_url: str) -> Iterator[SlackEnv]:
    with slack_env(db_url, redis_url) as e:
        yield e


@pytest.fixture
def draft(env: SlackEnv) -> str:
    with transaction(env.runtime.sessions) as session:
        broadcast = make_broadcast(session)
        add_recipients(session, broadcast, PHONES)
        card_messages.post_card(make_client(env.runtime.settings), session, broadcast, "C0CAMP")
        return broadcast.id


def _ephemeral(env: SlackEnv) -> str:
    return str(
        env.slack.wait_for(lambda: env.slack.calls_to("chat.postEphemeral"))[-1].params["text"]
    )


def _press(env: SlackEnv, action: str, broadcast_id: str) -> None:
    assert env.sender.interaction(p.button(action, broadcast_id)).status_code == 200


def test_edit_of_a_sending_broadcast_is_refused_with_its_status(env: SlackEnv, draft: str) -> None:
    with transaction(env.runtime.sessions) as session:
        service.start_broadcast(session, draft, by=OPERATOR)
    _press(env, ids.CARD_EDIT, draft)
    assert _ephemeral(env) == "Broadcast 'Holiday Sale' is sending; it can no longer be edited."
    assert env.slack.calls_to("views.open") == []


def test_retry_of_an_unfinished_broadcast_says_why_and_creates_nothing(
    env: SlackEnv, draft: str
) -> None:
    _press(env, ids.CARD_RETRY, draft)
    assert "is draft; retry its failures once it has finished" in _ephemeral(env)
    assert env.slack.calls_to("views.open") == []
    with transaction(env.runtime.sessions) as session:
        assert session.scalar(select(Broadcast).where(Broadcast.retry_of_id == draft)) is None


def test_a_retry_confirmed_after_someone_else_made_it_is_refused_in_the_modal(
    env: SlackEnv, draft: str
) -> None:
    with transaction(env.runtime.sessions) as session:
        service.cancel_broadcast(session, draft, by=OPERATOR)
    _press(env, ids.CARD_RETRY, draft)
    view = env.slack.wait_for(lambda: env.slack.calls_to("views.open"))[0].params["view"]
    assert "*3 recipients* to retry" in str(view["blocks"])
    first = env.sender.interaction(p.submission({**view, "id": "V1"}, {}))
    second = env.sender.interaction(p.submission({**view, "id": "V2"}, {}))
    assert first.status_code == second.status_code == 200
    notices = env.slack.wait_for(
        lambda: len(env.slack.calls_to("views.update")) == 2 and env.slack.calls_to("views.update")
    )
    # Both confirmations run at once (each is acknowledged first): exactly one makes the draft.
    shown = sorted(str(c.params["view"]) for c in notices)
    assert sum("Retry draft made" in v for v in shown) == 1, shown
    assert sum("3 are already in an earlier retry" in v for v in shown) == 1, shown
    assert {c.params["view_id"] for c in notices} == {"V1", "V2"}


def test_duplicate_button_posts_the_copy_and_notes_it_under_the_original(
    env: SlackEnv, draft: str
) -> None:
    _press(env, ids.CARD_DUPLICATE, draft)
    copies = env.slack.wait_for(
        lambda: [m for m in env.slack.messages_in("C0CAMP") if "(copy)" in m.text]
    )
    assert "Holiday Sale (copy)" in copies[0].text and "3 recipients" in copies[0].text
    with transaction(env.runtime.sessions) as session:
        original = session.get(Broadcast, draft)
        assert original is not None
        ts = original.card_message_id
    env.slack.wait_for(
        lambda: [
            n
            for n in env.slack.messages_in("C0CAMP", ts)
            if "duplicated *Holiday Sale* as *Holiday Sale (copy)*" in n.text
        ]
    )


def _edit_values(**over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        ids.B_EDIT_NAME: p.text(ids.A_EDIT_NAME, "Holiday Sale"),
        ids.B_EDIT_PHONES: p.text(ids.A_EDIT_PHONES, None),
        ids.B_EDIT_ALL: {ids.A_EDIT_ALL: {"selected_options": []}},
    }
    return {**values, **over}


def test_a_bad_number_in_the_edit_modal_is_shown_on_its_field_and_nothing_changes(
    env: SlackEnv, draft: str
) -> None:
    _press(env, ids.CARD_EDIT, draft)
    view = env.slack.wait_for(lambda: env.slack.calls_to("views.open"))[0].params["view"]
    answer = env.sender.interaction(
        p.submission(
            view,
            _edit_values(
                **{
                    ids.B_EDIT_NAME: p.text(ids.A_EDIT_NAME, "Renamed"),
                    ids.B_EDIT_PHONES: p.text(ids.A_EDIT_PHONES, f"{PHONES[0]}\nnot a number"),
                }
            ),
        )
    ).json()
    assert answer["response_action"] == "errors"
    assert answer["errors"][ids.B_EDIT_PHONES].startswith("Not a phone number: 'not a number'")
    checked = {ids.A_EDIT_ALL: {"selected_options": [{"value": ids.CHECKED}]}}
    with transaction(env.runtime.sessions) as session:
        service.schedule_broadcast(
            session,
            draft,
            utcnow() + timedelta(hours=1),
            by=OPERATOR,
        )
    answer = env.sender.interaction(
        p.submission(
            view,
            _edit_values(
                **{ids.B_EDIT_NAME: p.text(ids.A_EDIT_NAME, "Renamed"), ids.B_EDIT_ALL: checked}
            ),
        )
    ).json()
    assert "is scheduled and would have no recipients left" in answer["errors"][ids.B_EDIT_ALL]
    with transaction(env.runtime.sessions) as session:
        broadcast = session.get(Broadcast, draft)
        assert broadcast is not None and broadcast.name == "Holiday Sale"
        left = session.scalars(select(Recipient.phone).where(Recipient.broadcast_id == draft))
        assert sorted(left) == PHONES


def test_only_admins_may_edit_a_scheduled_broadcast(db_url: str, redis_url: str) -> None:
    with slack_env(db_url, redis_url, broadcast_admins="U0BOSS") as env:
        with transaction(env.runtime.sessions) as session:
            broadcast = make_broadcast(session)
            add_recipients(session, broadcast, PHONES)
            card_messages.post_card(make_client(env.runtime.settings), session, broadcast, "C0CAMP")
            service.schedule_broadcast(
                session, broadcast.id, utcnow() + timedelta(hours=1), by=OPERATOR
            )
            bid = broadcast.id
        _press(env, ids.CARD_EDIT, bid)  # U0ANA is not an admin
        assert _ephemeral(env) == (
            "Broadcast 'Holiday Sale' is scheduled and goes out on its own. "
            "Only broadcast admins can edit a broadcast (<@U0BOSS>); ask one of them."
        )
        assert env.slack.calls_to("views.open") == []
        assert (
            env.sender.interaction(p.button(ids.CARD_EDIT, bid, user="U0BOSS")).status_code == 200
        )
        view = env.slack.wait_for(lambda: env.slack.calls_to("views.open"))[0].params["view"]
        assert view["callback_id"] == ids.EDIT_DRAFT
        # A submission by someone else (a forged or shared view) is refused the same way.
        answer = env.sender.interaction(
            p.submission(view, _edit_values(**{ids.B_EDIT_NAME: p.text(ids.A_EDIT_NAME, "X")}))
        ).json()
        assert "Only broadcast admins can edit" in answer["errors"][ids.B_EDIT_NAME]
