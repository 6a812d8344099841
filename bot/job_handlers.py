"""The Slack adapter's handlers for the jobs the engine queues (jobs/handlers.py), set at start-up.

Every process that queues or runs these jobs calls `register()` before its first job: the CLI
(bot/cli/context.py, so every command and each worker role) and the web server (bot/server.py).
"""

from __future__ import annotations

from bot import agent_threads, notifications
from jobs.handlers import Handlers, Slot, registry


def register(into: Handlers = registry) -> None:
    into.register(Slot.BROADCAST_EVENT, notifications.handle_event)
    into.register(Slot.SLACK_AGENT_DELIVERY, agent_threads.deliver)
    into.check_complete()  # a slot added to jobs/ without its handler here fails every start
