"""Broadcast events (started, batch done, paused, completed…) handed to the adapters that show them.

The engine does not know Slack: it queues the job the adapter registered for
`Slot.BROADCAST_EVENT` (jobs/handlers.py) on the Slack queue; that job decides whether the
broadcast has a card or thread to update.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from redis import Redis

from jobs.handlers import MissingHandler, Slot, registry
from jobs.queues import SLACK, queue

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    STARTED = "started"
    PROGRESS = "progress"
    PAUSED = "paused"
    RESUMED = "resumed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    SCHEDULED = "scheduled"
    UNSCHEDULED = "unscheduled"
    ALERT = "alert"


def publish(redis: Redis[bytes], broadcast_id: str, kind: EventKind | str, **data: Any) -> None:
    """Queue an event for the adapters; never lets a notification problem stop the caller."""
    try:
        kind = EventKind(kind)
    except ValueError:
        raise ValueError(f"unknown broadcast event {kind!r}") from None
    try:
        # Workers refuse to start without the adapter's handlers (jobs/worker.run); anywhere else
        # a missing one is logged below, never raised into the sender or a webhook.
        handler = registry.get(Slot.BROADCAST_EVENT)
        queue(SLACK, redis).enqueue(
            handler,
            broadcast_id,
            kind.value,  # a plain string in the queue: readable by any release's worker
            data,
            job_timeout=120,
            result_ttl=60,
            failure_ttl=86400,
        )
    except MissingHandler:
        log.error("%s event for broadcast %s not shown: no adapter registered", kind, broadcast_id)
    except Exception:  # Redis down: the card catches up on the next refresh
        log.warning("could not queue %s event for broadcast %s", kind, broadcast_id, exc_info=True)
