"""`/broadcast new | list | status | pause | resume | cancel | report | edit | retry | …`."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import next_steps
from bot.actors import slack_user
from bot.slack import flows, follow_ups
from bot.slack import jobs as slack_jobs
from bot.slack.authz import Act
from bot.slack.blocks import kit, messages, state
from broadcasts.db import transaction
from broadcasts.errors import BroadcastBotError, ValidationFailed
from jobs import broadcast_control
from jobs.runtime import Runtime

log = logging.getLogger(__name__)

COMMAND = "/broadcast"
NEEDS_REF = {"status", "pause", "resume", "cancel", "report", "edit", "retry", "duplicate", "audit"}
# What each subcommand asks to do (authz.Act). Retry and duplicate only make drafts (sending
# them is the admins'), so they are edits; the audit trail is a report.
COMMAND_ACTS = {
    "pause": Act.PAUSE,
    "resume": Act.RESUME,
    "cancel": Act.CANCEL,
    "report": Act.REPORT,
    "edit": Act.EDIT,
    "retry": Act.EDIT,
    "duplicate": Act.EDIT,
    "audit": Act.REPORT,
}


def register(app: App) -> None:
    app.command(COMMAND)(on_broadcast)


def on_broadcast(
    ack: Ack, command: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    verb, _, rest = (command.get("text") or "").strip().partition(" ")
    verb, ref = verb.lower(), rest.strip()
    runtime: Runtime = context["runtime"]
    user = command["user_id"]
    try:
        if verb == "new":
            view = _new_view(runtime, command)
            ack()
            client.views_open(trigger_id=command["trigger_id"], view=view)
            return
        if verb in NEEDS_REF and not ref:
            raise ValidationFailed(f"Say which broadcast: `/broadcast {verb} <id or name>`.")
        channel = command.get("channel_id")
        if verb in COMMAND_ACTS:
            context["authz"].check(user, COMMAND_ACTS[verb], ref, from_channel=channel)
        if verb == "edit":
            view = follow_ups.edit_modal(runtime, ref, user_id=user, authz=context["authz"])
            ack()
            client.views_open(
                trigger_id=command["trigger_id"], view=state.with_origin(view, channel)
            )
            return
        if verb == "audit":
            blocks = follow_ups.audit_blocks(runtime, ref)
            ack(response_type="ephemeral", text=f"Audit of {kit.escape(ref)}", blocks=blocks)
            return
        if verb in FOLLOW_UPS:
            ack(response_type="ephemeral", text=f"Working on `{verb} {kit.escape(ref)}`…")
            _follow_up(verb, ref, runtime, client, command, respond)
            return
        reply = _run(verb, ref, runtime, user)
    except BroadcastBotError as exc:
        ack(response_type="ephemeral", text=kit.escape_keeping_mentions(next_steps.for_slack(exc)))
        return
    ack(response_type="ephemeral", **reply)


FOLLOW_UPS = {"retry", "duplicate"}


def _follow_up(
    verb: str,
    ref: str,
    runtime: Runtime,
    client: WebClient,
    command: dict[str, Any],
    respond: Respond,
) -> None:
    """Retry and duplicate copy recipients and post a card: answered after the ack."""
    user, channel = command["user_id"], command.get("channel_id")
    try:
        make = follow_ups.retry_failed if verb == "retry" else follow_ups.duplicate
        text = make(runtime, client, ref, user_id=user, channel_id=channel)
    except BroadcastBotError as exc:
        text = kit.escape_keeping_mentions(next_steps.for_slack(exc))
    except Exception:  # after the ack nobody else would tell the user: log it and say so
        log.exception("/broadcast %s %s failed", verb, ref)
        text = (
            f"`/broadcast {verb} {kit.escape(ref)}` failed unexpectedly; nothing was created. "
            "Try again."
        )
    respond(response_type="ephemeral", text=text)


def _new_view(runtime: Runtime, command: dict[str, Any]) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        return flows.new_modal(session, channel_id=command.get("channel_id"))


def _run(verb: str, ref: str, runtime: Runtime, user: str) -> dict[str, Any]:
    """The ephemeral reply to a command other than `new` (already authorised)."""
    by = slack_user(user)
    if verb in ("", "help"):
        return {"text": messages.HELP, "blocks": [kit.section(messages.HELP)]}
    if verb == "list":
        with transaction(runtime.sessions) as session:
            blocks = messages.broadcast_list(flows.broadcast_lines(session))
        return {"text": "Recent broadcasts", "blocks": blocks}
    if verb == "status":
        return {"text": f"Status of {kit.escape(ref)}", "blocks": flows.status_blocks(runtime, ref)}
    if verb == "pause":
        b = broadcast_control.pause(runtime, ref, by=by, reason=f"paused by {kit.mention(user)}")
        return {
            "text": f"Paused *{kit.escape(b.name)}*; `/broadcast resume {b.id[:8]}` continues it."
        }
    if verb == "resume":
        b = broadcast_control.resume(runtime, ref, by=by)
        return {"text": f"Resumed *{kit.escape(b.name)}*."}
    if verb == "cancel":
        b, skipped = broadcast_control.cancel(runtime, ref, by=by)
        return {
            "text": f"Cancelled *{kit.escape(b.name)}*; {kit.number(skipped)} recipients skipped."
        }
    if verb == "report":
        name = slack_jobs.enqueue_report(runtime, ref, user)
        return {
            "text": f"Building the report of *{kit.escape(name)}*; it will appear in the card's "
            "thread."
        }
    if verb == "templates":
        if ref == "sync":
            slack_jobs.enqueue_template_sync(runtime, user)
            return {"text": "Syncing templates from WhatsApp; I will post what changed here."}
        with transaction(runtime.sessions) as session:
            blocks = messages.template_list(flows.template_listing(session))
        return {"text": "Templates", "blocks": blocks}
    raise ValidationFailed(f"Unknown subcommand '{verb}'. `/broadcast help` lists them.")
