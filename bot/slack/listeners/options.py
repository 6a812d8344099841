"""Options of external selects: approved templates of the chosen configuration, and contacts."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.slack import flows
from bot.slack.blocks import ids, state
from broadcasts.db import transaction
from jobs.runtime import Runtime


def register(app: App) -> None:
    app.options(ids.A_TEMPLATE)(on_template_options)
    app.options(ids.A_CONTACTS)(on_contact_options)


def on_template_options(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    runtime: Runtime = context["runtime"]
    config = state.metadata(body.get("view") or {}).get("config")
    with transaction(runtime.sessions) as session:
        found = flows.template_options(
            session, int(config) if config else None, str(body.get("value") or "")
        )
    ack(options=found)


def on_contact_options(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    ack(options=flows.contact_options(context["runtime"], str(body.get("value") or "")))
