"""RQ queue names and the one place that builds queues from a Redis connection."""

from __future__ import annotations

from redis import Redis
from rq import Queue

# Sending first: a worker listening to several queues takes from them in this order.
SEND = "send"
WEBHOOKS = "webhooks"
AGENTS = "agents"
IMPORTS = "imports"  # the long jobs: imports, reports, template syncs
SLACK = "slack"
MAINTENANCE = "maintenance"
ALL = (SEND, WEBHOOKS, AGENTS, IMPORTS, SLACK, MAINTENANCE)


def queue(name: str, connection: Redis[bytes]) -> Queue:
    return Queue(name, connection=connection)


def job_id(*parts: object) -> str:
    """A deterministic RQ job id (letters, digits, '-' and '_' only)."""
    raw = "_".join(str(p) for p in parts)
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in raw)
