"""The broadcast card: read what it shows, post it, edit it, note in its thread."""

from __future__ import annotations

import logging
from typing import Any
from urllib.error import URLError

from rq import Retry
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.slack.blocks.card import CardData, card_blocks, fallback_text
from bot.slack.client import make_client
from broadcasts import service
from broadcasts.enums import RecipientStatus
from broadcasts.metrics import stored_counts
from broadcasts.models import Broadcast, Import, Recipient
from broadcasts.pacing import estimate_seconds
from jobs.queues import SLACK, queue
from jobs.runtime import current
from kapso.errors import ErrorAction, classify

log = logging.getLogger(__name__)

NOTE_RETRY_SECONDS = (2, 5, 15, 30, 60, 300)
# Slack's own words for "not now": worth another try, unlike channel_not_found and the like.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def top_failures(session: Session, broadcast_id: str, limit: int = 3) -> list[tuple[str, int]]:
    """The commonest failure codes, named as the error table (kapso/errors.py) names them."""
    rows = session.execute(
        select(Recipient.error_code, func.max(Recipient.error_title), func.count())
        .where(Recipient.broadcast_id == broadcast_id, Recipient.status == RecipientStatus.FAILED)
        .group_by(Recipient.error_code)
        .order_by(func.count().desc())
        .limit(limit)
    ).all()
    out = []
    for code, title, count in rows:
        known = classify(code, None) if code is not None else None
        summary = known.summary if known and known.action != ErrorAction.UNKNOWN else ""
        label = " ".join(p for p in (str(code) if code is not None else "", summary or title) if p)
        out.append((label or "unknown error", int(count)))
    return out


def _last_import(session: Session, broadcast_id: str) -> str | None:
    row = session.scalar(
        select(Import)
        .where(Import.broadcast_id == broadcast_id)
        .order_by(Import.id.desc())
        .limit(1)
    )
    if row is None or row.finished_at is None:
        return None
    source = f"`{row.filename}`" if row.filename else row.source
    return (
        f"{source}: {row.accepted:,} added, {row.invalid:,} invalid, {row.duplicates:,} duplicate"
    )


def card_data(session: Session, broadcast: Broadcast) -> CardData:
    batch_size, pause, rate = service.effective_pacing(broadcast)
    counts = stored_counts(broadcast)
    failures: tuple[tuple[str, int], ...] = ()
    if counts.failed:
        failures = tuple(top_failures(session, broadcast.id))
    return CardData(
        broadcast_id=broadcast.id,
        name=broadcast.name,
        status=str(broadcast.status),
        status_reason=broadcast.status_reason,
        config_name=broadcast.config.name,
        display_number=broadcast.config.display_phone_number,
        template_name=broadcast.template.name,
        template_language=broadcast.template.language,
        template_category=broadcast.template.category,
        agent_name=broadcast.agent.name,
        created_by=broadcast.created_by,
        counts=counts,
        rate_mps=rate,
        batch_size=batch_size,
        batch_pause_seconds=pause,
        scheduled_at=broadcast.scheduled_at,
        eta_seconds=estimate_seconds(
            counts.pending, batch_size=batch_size, pause_seconds=pause, rate=rate
        ),
        failures=failures,
        last_import=_last_import(session, broadcast.id),
    )


def message(data: CardData) -> dict[str, Any]:
    return {"text": fallback_text(data), "blocks": card_blocks(data)}


def post_card(client: WebClient, session: Session, broadcast: Broadcast, channel: str) -> str:
    """Post the card in `channel` and remember where it is; returns its ts."""
    response = client.chat_postMessage(
        channel=channel, unfurl_links=False, **message(card_data(session, broadcast))
    )
    broadcast.channel_id = str(response["channel"])
    broadcast.card_message_id = str(response["ts"])
    session.flush()
    return broadcast.card_message_id


def note(client: WebClient, broadcast: Broadcast, text: str) -> None:
    """Post `text` in the card's thread (or nowhere when the broadcast has no card)."""
    if broadcast.channel_id and broadcast.card_message_id:
        post_in_thread(client, broadcast.channel_id, broadcast.card_message_id, text)


class TransientSlackError(Exception):
    """Slack could not take the call now; the same call may go through later."""


def post_in_thread(client: WebClient, channel: str, thread_ts: str, text: str) -> None:
    """Post a note in a thread; a transient Slack failure is retried by a job with backoff."""
    try:
        _post_note(client, channel, thread_ts, text)
    except TransientSlackError as exc:
        log.warning(
            "note in %s/%s not posted (%s); retrying in the background", channel, thread_ts, exc
        )
        queue(SLACK, current().redis).enqueue(
            post_note_job,
            channel,
            thread_ts,
            text,
            retry=Retry(max=len(NOTE_RETRY_SECONDS), interval=list(NOTE_RETRY_SECONDS)),
            result_ttl=0,
            failure_ttl=86400,
        )


def post_note_job(channel: str, thread_ts: str, text: str) -> None:
    """RQ job: a note that failed transiently; raising lets RQ retry it later."""
    _post_note(make_client(current().settings), channel, thread_ts, text)


def _post_note(client: WebClient, channel: str, thread_ts: str, text: str) -> None:
    try:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, unfurl_links=False)
    except SlackApiError as exc:
        error = str(exc.response.get("error"))
        status = getattr(exc.response, "status_code", 200)
        if error in TRANSIENT_ERRORS or status >= 500 or status == 429:
            raise TransientSlackError(error) from exc
        log.warning("could not post in thread %s/%s: %s", channel, thread_ts, error)
    except (OSError, URLError) as exc:  # connection refused, reset, timed out
        raise TransientSlackError(f"{type(exc).__name__}: {exc}") from exc


def for_thread(session: Session, channel: str, thread_ts: str) -> Broadcast | None:
    """The broadcast whose card starts this thread."""
    return session.scalar(
        select(Broadcast)
        .where(Broadcast.card_message_id == thread_ts, Broadcast.channel_id == channel)
        .limit(1)
    )
