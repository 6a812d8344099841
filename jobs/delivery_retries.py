"""Attempts of an agent delivery, for both kinds of agent (webhook POSTs and Slack threads).

One attempt's outcome is recorded here: delivered, failed for good, or pending again with
`next_attempt_at` set by the backoff and a job queued for that time. `requeue_due` only takes
deliveries whose `next_attempt_at` has passed, so a lost job is replaced without cutting a
backoff short.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from redis import Redis
from sqlalchemy import or_, select

from broadcasts.backoff import backoff_seconds
from broadcasts.db import transaction
from broadcasts.enums import AgentKind, DeliveryStatus
from broadcasts.models import Agent, AgentDelivery, utcnow
from jobs import keys
from jobs.handlers import Slot, registry
from jobs.queues import AGENTS, queue
from jobs.runtime import Runtime

log = logging.getLogger(__name__)

BACKOFF_CAP_SECONDS = 600.0
JOB_OPTIONS: dict[str, Any] = {"job_timeout": 120, "result_ttl": 0, "failure_ttl": 86400}


def delivery_backoff(attempt: int) -> float:
    """About 2, 4, 8 … seconds after attempt 1, 2, 3 …, capped at 10 minutes."""
    return backoff_seconds(attempt, cap=BACKOFF_CAP_SECONDS)


def enqueue_delivery(
    redis: Redis[bytes], delivery_id: int, kind: str, *, delay: float = 0, attempt: int = 0
) -> None:
    """Queue a delivery attempt on the job of its agent's kind; a retry (`attempt` > 0) gets a
    job id of its own, so the same retry is never queued twice."""
    slack = kind == AgentKind.SLACK
    func: Any = registry.get(Slot.SLACK_AGENT_DELIVERY) if slack else _webhook_delivery()
    options = dict(JOB_OPTIONS)
    if attempt:
        retry_job = keys.slack_agent_retry_job if slack else keys.agent_retry_job
        options["job_id"] = retry_job(delivery_id, attempt)
    q = queue(AGENTS, redis)
    if delay > 0:
        q.enqueue_in(timedelta(seconds=delay), func, delivery_id, **options)
    else:
        q.enqueue(func, delivery_id, **options)


def _webhook_delivery() -> Any:
    from jobs.agents import deliver  # jobs.agents records its attempts here

    return deliver


def record_attempt(
    runtime: Runtime, delivery_id: int, error: str | None, *, retry: bool = True
) -> str:
    """Record one attempt: `error` None means delivered. A failure is retried after the backoff
    (`next_attempt_at` says when) until `agent_max_attempts`, or fails at once when `retry` is
    False (retrying cannot help, e.g. the agent has no channel). Returns what happened."""
    with transaction(runtime.sessions) as session:
        delivery = session.get(AgentDelivery, delivery_id)
        if delivery is None:
            return "nothing to do"
        if delivery.status != DeliveryStatus.PENDING:  # redelivered or finished meanwhile
            return str(delivery.status)
        kind = str(session.scalar(select(Agent.kind).where(Agent.id == delivery.agent_id)))
        delivery.attempts += 1
        attempts = delivery.attempts
        if error is None:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = utcnow()
            delivery.last_error = None
            delivery.next_attempt_at = None
            return "delivered"
        delivery.last_error = error[:2000]
        if not retry or attempts >= runtime.settings.agent_max_attempts:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
            log.error(
                "%s agent delivery %s failed after %d attempts: %s",
                kind,
                delivery_id,
                attempts,
                error,
            )
            return "failed"
        delay = delivery_backoff(attempts)
        delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
    log.warning(
        "%s agent delivery %s attempt %d failed (%s); retrying in %.1fs",
        kind,
        delivery_id,
        attempts,
        error,
        delay,
    )
    enqueue_delivery(runtime.redis, delivery_id, kind, delay=delay, attempt=attempts)
    return "retrying"


def requeue_due(runtime: Runtime, *, grace_seconds: float = 60.0) -> int:
    """Queue again pending deliveries whose attempt is overdue by `grace_seconds` (their job
    was lost); one whose backoff has not run out is left to its scheduled job."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    with transaction(runtime.sessions) as session:
        rows = session.execute(
            select(AgentDelivery.id, Agent.kind)
            .join(Agent, Agent.id == AgentDelivery.agent_id)
            .where(
                AgentDelivery.status == DeliveryStatus.PENDING,
                or_(
                    AgentDelivery.next_attempt_at.is_(None), AgentDelivery.next_attempt_at <= cutoff
                ),
            )
            .limit(10_000)
        ).all()
    for delivery_id, kind in rows:
        enqueue_delivery(runtime.redis, delivery_id, kind)
    return len(rows)
