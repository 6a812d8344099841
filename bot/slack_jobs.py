"""Queueing the bot's background work (file imports, reports, template syncs)."""

from __future__ import annotations

from broadcasts import service
from broadcasts.db import transaction
from broadcasts.errors import ValidationFailed
from jobs.queues import IMPORTS, job_id, queue
from jobs.runtime import Runtime

INGEST_JOB = "bot.slack_files.ingest_file"
REPORT_JOB = "bot.reports.post_report"
SYNC_JOB = "bot.templates_sync.sync_and_tell"
SEEN_FILE_SECONDS = 7 * 86400


def enqueue_ingest(
    runtime: Runtime, file_id: str, user_id: str, channel_id: str, thread_ts: str
) -> bool:
    """Queue the import of a file shared in a thread, once per file id (Slack redelivers)."""
    first = runtime.redis.set(f"bb:slack:file:{file_id}", b"1", nx=True, ex=SEEN_FILE_SECONDS)
    if not first:
        return False
    queue(IMPORTS, runtime.redis).enqueue(
        INGEST_JOB,
        file_id,
        user_id,
        channel_id,
        thread_ts,
        job_id=job_id("slack-file", file_id),
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
        REPORT_JOB, broadcast_id, user_id, job_timeout=1800, result_ttl=0, failure_ttl=86400
    )
    return name


def enqueue_template_sync(runtime: Runtime, user_id: str) -> None:
    queue(IMPORTS, runtime.redis).enqueue(
        SYNC_JOB, user_id, job_id=job_id("template-sync", user_id), result_ttl=0, failure_ttl=3600
    )
