"""Modal submissions: new broadcast, add contacts, send confirmation, schedule, send test."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.actors import slack_user
from bot.slack import card_messages, flows, follow_ups
from bot.slack.authz import Act, Authoriser
from bot.slack.blocks import ids, kit, modals, state
from bot.slack.blocks.state import FieldError
from broadcasts import service
from broadcasts.db import transaction
from broadcasts.errors import BroadcastBotError, ValidationFailed
from jobs import broadcast_control
from jobs.runtime import Runtime

log = logging.getLogger(__name__)


def register(app: App) -> None:
    app.view(ids.NEW_BROADCAST)(on_new_broadcast)
    app.view(ids.ADD_CONTACTS)(on_add_contacts)
    app.view(ids.SEND_CONFIRM)(on_send_confirm)
    app.view(ids.SCHEDULE)(on_schedule)
    app.view(ids.SEND_TEST)(on_send_test)
    app.view(ids.EDIT_DRAFT)(on_edit_draft)
    app.view(ids.RETRY_CONFIRM)(on_retry_confirm)


class Submission(NamedTuple):
    """What every broadcast modal's listener starts from: the runtime, the authoriser, who
    submitted it and the broadcast it is about (from the modal's metadata)."""

    runtime: Runtime
    authz: Authoriser
    user: str
    broadcast_id: str


def _submission(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> Submission:
    broadcast_id = str(state.metadata(view).get("broadcast", ""))
    return Submission(context["runtime"], context["authz"], body["user"]["id"], broadcast_id)


def _errors(ack: Ack, exc: FieldError) -> None:
    ack(response_action="errors", errors={exc.block_id: kit.clip(exc.message, 300)})


def on_new_broadcast(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    runtime: Runtime = context["runtime"]
    user = body["user"]["id"]
    try:
        data = state.new_broadcast(view)
        broadcast_id = flows.create_from_modal(
            runtime, data, user_id=user, team_id=(body.get("team") or {}).get("id", "")
        )
    except FieldError as exc:
        _errors(ack, exc)
        return
    ack()  # within Slack's 3 s: the card (a Slack round trip, retried) is posted after
    flows.post_new_card(runtime, client, broadcast_id, user_id=user)


def on_add_contacts(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    runtime, authz, user, broadcast_id = _submission(body, view, context)
    chosen = state.add_contacts(view)
    if not chosen.contact_ids and not chosen.all_eligible:
        _errors(
            ack,
            FieldError(ids.B_CONTACTS, "Pick contacts, or tick “Select all eligible contacts”."),
        )
        return
    try:
        authz.check(user, Act.EDIT, broadcast_id, from_channel=state.origin(view))
    except BroadcastBotError as exc:
        _errors(ack, FieldError(ids.B_CONTACTS, str(exc)))
        return
    ack()
    try:
        flows.add_contacts(
            runtime,
            client,
            broadcast_id,
            chosen.contact_ids,
            all_eligible=chosen.all_eligible,
            user_id=user,
        )
    except (FieldError, BroadcastBotError) as exc:
        _tell_in_card(runtime, client, broadcast_id, user, str(exc))


def on_send_confirm(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
) -> None:
    runtime, authz, user, broadcast_id = _submission(body, view, context)
    try:
        authz.check(user, Act.SEND, broadcast_id, from_channel=state.origin(view))
        broadcast_control.start(runtime, broadcast_id, by=slack_user(user))
    except BroadcastBotError as exc:
        ack(
            response_action="update",
            view=modals.notice_modal("Not sent", kit.escape_keeping_mentions(exc)),
        )
        return
    ack()


def on_schedule(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    runtime, authz, user, broadcast_id = _submission(body, view, context)
    try:
        authz.check(user, Act.SCHEDULE, broadcast_id, from_channel=state.origin(view))
        at = state.schedule_at(view)
        broadcast_control.schedule(runtime, broadcast_id, at, by=slack_user(user))
    except FieldError as exc:
        _errors(ack, exc)
        return
    except BroadcastBotError as exc:
        _errors(ack, FieldError(ids.B_WHEN, str(exc)))
        return
    ack()


def on_send_test(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Checks that need no network answer inline; the WhatsApp call (seconds when the API is
    slow) comes after the ack, and its result replaces the modal."""
    runtime, authz, user, broadcast_id = _submission(body, view, context)
    try:
        authz.check(user, Act.TEST_SEND, broadcast_id, from_channel=state.origin(view))
        data = state.send_test(view)
        broadcast_control.check_test_send(
            runtime, broadcast_id, phone=data.phone, params=data.params
        )
    except FieldError as exc:
        _errors(ack, exc)
        return
    except ValidationFailed as exc:
        block = ids.B_PHONE if exc.field in (None, "phone") else _param_block(view, exc)
        _errors(ack, FieldError(block, str(exc)))
        return
    except BroadcastBotError as exc:
        _errors(ack, FieldError(ids.B_PHONE, str(exc)))
        return
    ack(
        response_action="update",
        view=modals.notice_modal("Sending test…", f"Sending the test to {kit.escape(data.phone)}…"),
    )
    view_id = str((body.get("view") or {}).get("id") or view.get("id") or "")
    try:
        wamid = broadcast_control.test_send(
            runtime, broadcast_id, phone=data.phone, params=data.params, by=slack_user(user)
        )
    except BroadcastBotError as exc:
        flows.show_notice(client, view_id, "Test not sent", kit.escape_keeping_mentions(exc))
        return
    flows.show_notice(
        client,
        view_id,
        "Test sent",
        f"WhatsApp accepted the test to {kit.escape(data.phone)} (`{kit.escape(wamid)}`).",
    )
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, broadcast_id)
    card_messages.note(
        client, broadcast, f"🧪 {kit.mention(user)} sent a test message."
    )  # committed


def on_edit_draft(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Save the edit-draft modal all or nothing; a problem is shown on the field at fault."""
    runtime, authz, user, broadcast_id = _submission(body, view, context)
    try:
        authz.check(user, Act.EDIT, broadcast_id, from_channel=state.origin(view))
    except BroadcastBotError as exc:
        _errors(ack, FieldError(ids.B_EDIT_NAME, str(exc)))
        return
    try:
        follow_ups.apply_edit(
            runtime,
            client,
            broadcast_id,
            state.edit_draft(view),
            user_id=user,
            authz=authz,
        )
    except FieldError as exc:
        _errors(ack, exc)
        return
    ack()


def on_retry_confirm(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Make the retry draft and post its card, then say so (or why not) in the modal.

    Copying many recipients can take longer than Slack waits for an answer, so the modal is
    acknowledged first and updated when the draft exists.
    """
    runtime, authz, user, broadcast_id = _submission(body, view, context)
    try:
        authz.check(user, Act.EDIT, broadcast_id, from_channel=state.origin(view))
    except BroadcastBotError as exc:
        ack(
            response_action="update",
            view=modals.notice_modal("No retry made", kit.escape_keeping_mentions(exc)),
        )
        return
    ack(response_action="update", view=modals.notice_modal("Retry failed", "Making the draft…"))
    try:
        text = follow_ups.retry_failed(runtime, client, broadcast_id, user_id=user, channel_id=None)
        title = "Retry draft made"
    except BroadcastBotError as exc:
        text, title = kit.escape_keeping_mentions(exc), "No retry made"
    except Exception:  # after the ack nobody else would tell the user: log it and say so
        log.exception("retry of %s failed", state.metadata(view).get("broadcast"))
        text, title = (
            "The retry failed unexpectedly; nothing was created. Try again.",
            "No retry made",
        )
    try:
        client.views_update(view_id=view["id"], view=modals.notice_modal(title, text))
    except SlackApiError as exc:  # the modal was closed meanwhile: the card's thread has the news
        log.info("retry notice not shown: %s", exc.response.get("error"))


def _param_block(view: dict[str, Any], exc: ValidationFailed) -> str:
    """The first parameter field (the test send names the missing one in its message)."""
    for block_id in view.get("state", {}).get("values", {}):
        if block_id.startswith(ids.B_PARAM) and block_id.removeprefix(ids.B_PARAM) in str(exc):
            return str(block_id)
    return ids.B_PHONE


def _tell_in_card(
    runtime: Runtime, client: WebClient, broadcast_id: str, user: str, text: str
) -> None:
    channel = None
    try:
        with transaction(runtime.sessions) as session:
            channel = service.get_broadcast(session, broadcast_id).channel_id
    except BroadcastBotError:
        pass
    flows.tell(client, user_id=user, channel_id=channel, text=text)
