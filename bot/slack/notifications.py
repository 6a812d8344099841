"""Broadcast events shown in Slack: the card edited in place, milestones and alerts in its thread.

`handle_event` is the job the engine queues for every event (jobs/broadcast_events.py), registered
for its slot at start-up (bot/slack/job_handlers.py); `refresh` is the only path that edits a
running card, within the budget of bot/slack/edit_budget.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack import card_messages
from bot.slack.blocks.card import CardData
from bot.slack.blocks.kit import mention, number, percent, slack_date
from bot.slack.client import make_client
from bot.slack.edit_budget import CardThrottle
from broadcasts.actors import Actor
from broadcasts.db import transaction
from broadcasts.durations import duration_text
from broadcasts.enums import BroadcastStatus
from broadcasts.models import Broadcast
from jobs.broadcast_events import EventKind
from jobs.queues import SLACK, queue
from jobs.runtime import Runtime, current

log = logging.getLogger(__name__)

MILESTONES = (25, 50, 75)


class CardEdit(StrEnum):
    """What `refresh` did to the card."""

    EDITED = "edited"
    SCHEDULED = "scheduled"  # the budget kept it back: a catch-up edit is scheduled
    RATE_LIMITED = "rate limited"  # Slack said 429: retried after its Retry-After
    UP_TO_DATE = "up to date"  # nothing new to show
    UNCHANGED = "unchanged"  # the new content is what the card shows already
    NO_CARD = "no card"
    FAILED = "failed"  # an error waiting will not fix (logged)


def handle_event(broadcast_id: str, kind: str, data: dict[str, Any]) -> None:
    """Show an event: the card catches up (within its budget) and the thread gets its note."""
    try:
        event = EventKind(kind)
    except ValueError:  # queued by a newer release: the card still shows the change
        log.warning(
            "unknown broadcast event %r for %s; refreshing the card only", kind, broadcast_id
        )
        event = None
    runtime = current()
    with transaction(runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None or not (broadcast.channel_id and broadcast.card_message_id):
            return
        card = card_messages.card_data(session, broadcast)
        channel, ts = broadcast.channel_id, broadcast.card_message_id
    throttle = throttle_for(runtime)
    show_changes(runtime, broadcast_id)
    if event is None:
        text = None
    elif event == EventKind.PROGRESS:
        text = _milestone(throttle, card)
    else:
        text = note_for(event, data, card)
    if text:
        card_messages.post_in_thread(make_client(runtime.settings), channel, ts, text)


def throttle_for(runtime: Runtime) -> CardThrottle:
    settings = runtime.settings
    return CardThrottle(
        runtime.redis,
        per_card_seconds=settings.slack_card_update_seconds,
        per_minute=settings.slack_updates_per_minute,
    )


def show_changes(runtime: Runtime, broadcast_id: str) -> CardEdit:
    """The card has something new to show (call after the commit): edited now or soon."""
    throttle_for(runtime).mark_dirty(broadcast_id)
    return refresh(runtime, broadcast_id)


def refresh_card(broadcast_id: str) -> None:
    """RQ job: the catch-up edit, when the budget kept an earlier one back."""
    runtime = current()
    throttle_for(runtime).release_trailing(broadcast_id)
    refresh(runtime, broadcast_id)


def refresh(runtime: Runtime, broadcast_id: str) -> CardEdit:
    """The one way the card is edited: when it has something new to show and its budget
    allows, edit it now; otherwise make sure one catch-up edit is scheduled. An edit that would
    show exactly what the card shows already is left out."""
    throttle = throttle_for(runtime)
    if not throttle.is_dirty(broadcast_id):
        return CardEdit.UP_TO_DATE
    wait = throttle.reserve(broadcast_id)
    if wait > 0:
        _schedule(runtime, throttle, broadcast_id, wait)
        return CardEdit.SCHEDULED
    throttle.take_dirty(broadcast_id)
    with transaction(runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None or not (broadcast.channel_id and broadcast.card_message_id):
            return CardEdit.NO_CARD
        content = card_messages.message(card_messages.card_data(session, broadcast))
        channel, ts = broadcast.channel_id, broadcast.card_message_id
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    if throttle.same_as_shown(broadcast_id, digest):
        return CardEdit.UNCHANGED
    try:
        make_client(runtime.settings, retry_rate_limits=False).chat_update(
            channel=channel, ts=ts, **content
        )
    except SlackApiError as exc:
        retry_after = _retry_after(exc)
        if retry_after is None:
            log.warning(
                "could not edit the card of %s: %s", broadcast_id, exc.response.get("error")
            )
            return CardEdit.FAILED
        throttle.push_back(broadcast_id, retry_after)
        throttle.mark_dirty(broadcast_id)
        _schedule(runtime, throttle, broadcast_id, retry_after)
        return CardEdit.RATE_LIMITED
    throttle.shown(broadcast_id, digest)
    # The next edit's window starts when Slack has this one: requests that left a second apart
    # can otherwise arrive closer together.
    throttle.push_back(broadcast_id, 0)
    return CardEdit.EDITED


def _retry_after(exc: SlackApiError) -> float | None:
    """Seconds Slack asked us to wait (429), or None for an error waiting will not fix."""
    response = exc.response
    if getattr(response, "status_code", None) != 429 and response.get("error") != "ratelimited":
        return None
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after") or 1
    try:
        return max(1.0, float(value))
    except (TypeError, ValueError):
        return 1.0


def _schedule(runtime: Runtime, throttle: CardThrottle, broadcast_id: str, seconds: float) -> None:
    if not throttle.claim_trailing(broadcast_id, seconds):
        return  # a catch-up edit is already scheduled; it will show this too
    queue(SLACK, runtime.redis).enqueue_in(
        timedelta(seconds=seconds),
        refresh_card,
        broadcast_id,
        # No fixed job id: re-scheduling while a refresh runs must not touch the running job.
        result_ttl=60,
        failure_ttl=3600,
    )


def _milestone(throttle: CardThrottle, card: CardData) -> str | None:
    reached = [m for m in MILESTONES if card.counts.progress * 100 >= m]
    if not reached or card.status != BroadcastStatus.SENDING:
        return None
    top = reached[-1]
    if not throttle.once(f"milestone:{card.broadcast_id}:{top}"):
        return None
    c = card.counts
    return (
        f"📈 {top}% done: {number(c.sent)} sent, {number(c.delivered)} delivered, "
        f"{number(c.failed)} failed so far."
    )


def note_for(kind: EventKind, data: dict[str, Any], card: CardData) -> str | None:
    """The thread message for an event, naming who did it."""
    by = mention(data.get("by"))
    reason = data.get("reason") or data.get("message")
    c = card.counts
    if kind == EventKind.STARTED:
        eta = f"; about {duration_text(card.eta_seconds)}" if card.eta_seconds else ""
        recipients = int(data.get("recipients", c.pending))  # counted at the start
        return (
            f"🚀 Started by {by}: {number(recipients)} recipients at "
            f"{number(card.rate_mps)} msg/s{eta}."
        )
    if kind == EventKind.PAUSED:
        if data.get("auto") or data.get("by") in (None, Actor.system().id):
            return (
                f"⚠️ Sending was paused automatically: {reason or 'see the card'}. "
                "Press *Resume* once the cause is fixed."
            )
        return f"⏸️ Paused by {by}."
    if kind == EventKind.RESUMED:
        return f"▶️ Resumed by {by}."
    if kind == EventKind.CANCELLED:
        skipped = int(data.get("skipped") or 0)
        return f"🚫 Cancelled by {by}; {number(skipped)} recipients not reached were skipped."
    if kind == EventKind.FAILED:
        return f"❌ Sending stopped: {reason or card.status_reason or 'see the card'}."
    if kind == EventKind.COMPLETED:
        return (
            f"✅ Completed: {number(c.sent)} sent of {number(c.total)}, "
            f"{number(c.delivered)} delivered, {number(c.read)} read, "
            f"{number(c.responded)} responded, {number(c.failed)} failed "
            f"(response rate {percent(c.response_rate)}). *Report* on the card has the details."
        )
    if kind == EventKind.SCHEDULED:
        at = data.get("at")
        when = ""
        if at:
            moment = datetime.fromisoformat(str(at))
            utc = moment.strftime("%Y-%m-%d %H:%M UTC")
            when = f" for {slack_date(moment.timestamp(), utc)} ({utc})"
        return f"⏰ Scheduled by {by}{when}."
    if kind == EventKind.UNSCHEDULED:
        return f"↩️ Schedule removed by {by}; the broadcast is a draft again."
    if kind == EventKind.ALERT:
        return f"⚠️ {reason or 'Something needs attention on this broadcast.'}"
    return None
