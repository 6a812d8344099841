"""`/broadcast templates sync` as a job: sync every configuration, then DM the user what changed."""

from __future__ import annotations

from bot.slack.blocks.kit import escape
from bot.slack.client import make_client
from broadcasts.configs import list_configs
from broadcasts.db import transaction
from broadcasts.errors import BroadcastBotError
from jobs.runtime import current
from jobs.whatsapp_sync import sync_templates


def sync_and_tell(user_id: str) -> None:
    runtime = current()
    with transaction(runtime.sessions) as session:
        names = [c.name for c in list_configs(session)]
    lines = []
    for name in names:
        try:
            r = sync_templates(runtime, name)
        except BroadcastBotError as exc:
            lines.append(f"• *{escape(name)}*: {escape(exc)}")
            continue
        line = f"• *{escape(name)}*: {r.added} added, {r.updated} updated, {r.unchanged} unchanged"
        changes = ", ".join(
            f"`{escape(t)}` {escape(old)} → {escape(new)}" for t, old, new in r.status_changes
        )
        line += f"; status changes: {changes}" if changes else ""
        if r.limits is not None:
            line += f"; number: {escape(r.limits.describe())}"
        lines.append(line)
    text = (
        "Template sync finished:\n" + "\n".join(lines)
        if lines
        else ("There is no WhatsApp configuration to sync yet.")
    )
    make_client(runtime.settings).chat_postMessage(channel=user_id, text=text)
