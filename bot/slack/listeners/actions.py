"""Buttons and selects: the card's buttons and the new-broadcast modal's live refresh."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.actors import slack_user
from bot.slack import flows, follow_ups
from bot.slack import jobs as slack_jobs
from bot.slack.authz import Act, Authoriser
from bot.slack.blocks import ids, modals, state
from broadcasts.db import transaction
from broadcasts.errors import BroadcastBotError
from jobs import broadcast_control
from jobs.runtime import Runtime

log = logging.getLogger(__name__)


# What each card button asks to do; a button missing here needs the strictest rule (sending).
# Duplicate and Retry failed… only make drafts (sending them is the admins'), so they are edits.
BUTTON_ACTS = {
    ids.CARD_ADD_CONTACTS: Act.EDIT,
    ids.CARD_CSV_TEMPLATE: Act.EDIT,
    ids.CARD_SEND_TEST: Act.TEST_SEND,
    ids.CARD_SEND: Act.SEND,
    ids.CARD_SCHEDULE: Act.SCHEDULE,
    ids.CARD_UNSCHEDULE: Act.SCHEDULE,
    ids.CARD_CANCEL: Act.CANCEL,
    ids.CARD_PAUSE: Act.PAUSE,
    ids.CARD_RESUME: Act.RESUME,
    ids.CARD_REPORT: Act.REPORT,
    ids.CARD_EDIT: Act.EDIT,
    ids.CARD_DUPLICATE: Act.EDIT,
    ids.CARD_RETRY: Act.EDIT,
}


def register(app: App) -> None:
    for action_id in (*ids.CARD_ACTIONS, *ids.FOLLOW_UP_ACTIONS):
        app.action(action_id)(on_card_button)
    app.action(ids.A_CONFIG)(on_modal_choice)
    app.action(ids.A_TEMPLATE)(on_modal_choice)


def on_card_button(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    ack()
    runtime: Runtime = context["runtime"]
    authz: Authoriser = context["authz"]
    user = body["user"]["id"]
    channel = (body.get("channel") or {}).get("id")
    broadcast_id = str(action.get("value") or "")
    trigger = body.get("trigger_id")
    by = slack_user(user)
    act = BUTTON_ACTS.get(action["action_id"], Act.SEND)
    try:
        authz.check(user, act, broadcast_id, from_channel=channel)
        match action["action_id"]:
            case ids.CARD_ADD_CONTACTS:
                view = flows.add_contacts_modal(runtime, broadcast_id)
                client.views_open(trigger_id=trigger, view=state.with_origin(view, channel))
            case ids.CARD_CSV_TEMPLATE:
                flows.upload_csv_template(runtime, client, broadcast_id, user)
            case ids.CARD_SEND_TEST:
                view = flows.send_test_modal(runtime, broadcast_id)
                client.views_open(trigger_id=trigger, view=state.with_origin(view, channel))
            case ids.CARD_SEND:
                summary = flows.send_summary(runtime, broadcast_id)
                view = modals.send_confirm_modal(summary)
                client.views_open(trigger_id=trigger, view=state.with_origin(view, channel))
            case ids.CARD_SCHEDULE:
                view = flows.schedule_modal(runtime, client, broadcast_id, user)
                client.views_open(trigger_id=trigger, view=state.with_origin(view, channel))
            case ids.CARD_UNSCHEDULE:
                broadcast_control.unschedule(runtime, broadcast_id, by=by)
            case ids.CARD_CANCEL:
                broadcast_control.cancel(runtime, broadcast_id, by=by)
            case ids.CARD_PAUSE:
                broadcast_control.pause(runtime, broadcast_id, by=by, reason=f"paused by <@{user}>")
            case ids.CARD_RESUME:
                broadcast_control.resume(runtime, broadcast_id, by=by)
            case ids.CARD_REPORT:
                slack_jobs.enqueue_report(runtime, broadcast_id, user)
            case ids.CARD_EDIT:
                view = follow_ups.edit_modal(runtime, broadcast_id, user_id=user, authz=authz)
                client.views_open(trigger_id=trigger, view=state.with_origin(view, channel))
            case ids.CARD_DUPLICATE:
                follow_ups.duplicate(
                    runtime, client, broadcast_id, user_id=user, channel_id=channel
                )
            case ids.CARD_RETRY:
                view = follow_ups.retry_modal(runtime, broadcast_id)
                client.views_open(trigger_id=trigger, view=state.with_origin(view, channel))
    except BroadcastBotError as exc:
        flows.tell(client, user_id=user, channel_id=channel, text=str(exc))


def on_modal_choice(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """A configuration or template was chosen: redraw the modal (agent, templates, preview)."""
    ack()
    runtime: Runtime = context["runtime"]
    view = body["view"]
    data = state.new_broadcast_partial(view)
    with transaction(runtime.sessions) as session:
        new_view = flows.new_modal(
            session,
            channel_id=data.channel_id,
            config_id=data.config_id,
            template_id=data.template_id,
        )
    try:
        client.views_update(view_id=view["id"], hash=view.get("hash"), view=new_view)
    except SlackApiError as exc:  # a newer update won the race (hash_conflict): nothing to do
        log.info("modal refresh skipped: %s", exc.response.get("error"))
