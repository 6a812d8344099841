"""Queueing the bot's background work (file imports, reports, template syncs)."""

from __future__ import annotations

from bot.slack.files import ingest_file
from bot.slack.reports import post_report
from bot.slack.templates_sync import sync_and_tell
from broadcasts import service
from broadcasts.db import transaction
from broadcasts.errors import ValidationFailed
from jobs import keys
from jobs.queues import IMPORTS, queue
from jobs.runtime import Runtime

SEEN_FILE_SECONDS = 7 * 86400


def enqueue_ingest(
    runtime: Runtime, file_id: str, user_id: str, channel_id: str, thread_ts: str
) -> bool:
    """Queue the import of a file shared in a thread, once per file id (Slack redelivers)."""
    first = runtime.redis.set(keys.slack_file_seen(file_id), b"1", nx=True, ex=SEEN_FILE_SECONDS)
    if not first:
        return False
    queue(IMPORTS, runtime.redis).enqueue(
        ingest_file,
        file_id,
        user_id,
        channel_id,
        thread_ts,
        job_id=keys.slack_file_job(file_id),
        job_timeout=1800,
        result_ttl=0,
        failure_ttl=86400,
    )
    return True


def enqueue_report(runtime: Runtime, ref: str, user_id: str) -> str:
    """Queue the report of a broadcast with a card; returns the broadcast's name."""
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, ref)
        if not broadcast.card_message_id:
            raise ValidationFailed(
                f"Broadcast '{broadcast.name}' has no Slack card to post the report under; "
                f"use `broadcast-bot broadcasts report {broadcast.id[:8]}`."
            )
        name, broadcast_id = broadcast.name, broadcast.id
    queue(IMPORTS, runtime.redis).enqueue(  # long work: kept off the queue of card edits
        post_report, broadcast_id, user_id, job_timeout=1800, result_ttl=0, failure_ttl=86400
    )
    return name


def enqueue_template_sync(runtime: Runtime, user_id: str) -> None:
    queue(IMPORTS, runtime.redis).enqueue(
        sync_and_tell,
        user_id,
        job_id=keys.template_sync_job(user_id),
        result_ttl=0,
        failure_ttl=3600,
    )
