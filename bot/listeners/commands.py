"""`/broadcast new | list | status | pause | resume | cancel | report | templates | help`."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import flows, slack_jobs
from bot.authz import Act, Authoriser
from bot.blocks import kit, messages
from broadcasts.actors import Actor
from broadcasts.db import transaction
from broadcasts.errors import BroadcastBotError, ValidationFailed
from jobs import control
from jobs.runtime import Runtime

log = logging.getLogger(__name__)

COMMAND = "/broadcast"
NEEDS_REF = {"status", "pause", "resume", "cancel", "report"}
COMMAND_ACTS = {
    "pause": Act.PAUSE,
    "resume": Act.RESUME,
    "cancel": Act.CANCEL,
    "report": Act.REPORT,
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
        reply = _run(verb, ref, runtime, context["authz"], user, command.get("channel_id"))
    except BroadcastBotError as exc:
        ack(response_type="ephemeral", text=kit.escape_keeping_mentions(exc))
        return
    ack(response_type="ephemeral", **reply)


def _new_view(runtime: Runtime, command: dict[str, Any]) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        return flows.new_modal(session, channel_id=command.get("channel_id"))


def _run(
    verb: str, ref: str, runtime: Runtime, authz: Authoriser, user: str, channel: str | None
) -> dict[str, Any]:
    """The ephemeral reply to a command other than `new`."""
    by = Actor.slack(user)
    if verb in COMMAND_ACTS:
        authz.check(user, COMMAND_ACTS[verb], ref, from_channel=channel)
    if verb in ("", "help"):
        return {"text": messages.HELP, "blocks": [kit.section(messages.HELP)]}
    if verb == "list":
        with transaction(runtime.sessions) as session:
            blocks = messages.broadcast_list(flows.broadcast_lines(session))
        return {"text": "Recent broadcasts", "blocks": blocks}
    if verb == "status":
        return {"text": f"Status of {ref}", "blocks": flows.status_blocks(runtime, ref)}
    if verb == "pause":
        b = control.pause(runtime, ref, by=by, reason=f"paused by {kit.mention(user)}")
        return {
            "text": f"Paused *{kit.escape(b.name)}*; `/broadcast resume {b.id[:8]}` continues it."
        }
    if verb == "resume":
        b = control.resume(runtime, ref, by=by)
        return {"text": f"Resumed *{kit.escape(b.name)}*."}
    if verb == "cancel":
        b, skipped = control.cancel(runtime, ref, by=by)
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
