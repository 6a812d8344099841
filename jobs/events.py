"""Broadcast events (started, batch done, paused, completed…) handed to the adapters that show them.

The engine does not know Slack: it enqueues `bot.notifications.handle_event` by name on the Slack
queue; that job decides whether the broadcast has a card or thread to update.
"""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis

from jobs.queues import SLACK, queue

log = logging.getLogger(__name__)

HANDLER = "bot.notifications.handle_event"
KINDS = frozenset(
    {
        "started",
        "progress",
        "paused",
        "resumed",
        "completed",
        "cancelled",
        "failed",
        "scheduled",
        "unscheduled",
        "import_done",
        "alert",
    }
)


def publish(redis: Redis[bytes], broadcast_id: str, kind: str, **data: Any) -> None:
    """Queue an event for the adapters; never lets a notification problem stop the caller."""
    if kind not in KINDS:
        raise ValueError(f"unknown broadcast event {kind!r}")
    try:
        queue(SLACK, redis).enqueue(
            HANDLER, broadcast_id, kind, data, job_timeout=120, result_ttl=60, failure_ttl=86400
        )
    except Exception:  # Redis down: the card catches up on the next refresh
        log.warning("could not queue %s event for broadcast %s", kind, broadcast_id, exc_info=True)
