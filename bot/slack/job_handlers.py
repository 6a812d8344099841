"""The Slack adapter's handlers for the jobs the engine queues (jobs/handlers.py), set at start-up.

Every process that queues or runs these jobs calls `register()` before its first job: the CLI
(bot/cli/context.py, so every command and each worker role) and the web server (bot/http/app.py).
"""

from __future__ import annotations

from bot.slack import (
    agent_threads,
    card_messages,
    notifications,
    reports,
    templates_sync,
)
from bot.slack import files as slack_files
from jobs.handlers import Handler, Handlers, Slot, registry

# Job functions that moved when bot/ was arranged by entry point (bot/slack/, bot/http/, bot/ops/):
# jobs queued under these names before the upgrade still run (jobs/worker.BroadcastJob).
FORMER_NAMES: dict[str, Handler] = {
    "bot.notifications.handle_event": notifications.handle_event,
    "bot.notifications.refresh_card": notifications.refresh_card,
    "bot.cards.post_note_job": card_messages.post_note_job,
    "bot.slack_files.ingest_file": slack_files.ingest_file,
    "bot.reports.post_report": reports.post_report,
    "bot.templates_sync.sync_and_tell": templates_sync.sync_and_tell,
    "bot.agent_threads.deliver": agent_threads.deliver,
}


def register(into: Handlers = registry) -> None:
    into.register(Slot.BROADCAST_EVENT, notifications.handle_event)
    into.register(Slot.SLACK_AGENT_DELIVERY, agent_threads.deliver)
    for name, func in FORMER_NAMES.items():
        into.register_former_name(name, func)
    into.check_complete()  # a slot added to jobs/ without its handler here fails every start
