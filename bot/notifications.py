"""Broadcast events shown in Slack: the card edited in place, milestones and alerts in its thread.

`handle_event` is the job the engine enqueues by name (jobs/events.py) on the Slack queue.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import cards
from bot.blocks.card import CardData
from bot.blocks.kit import duration, mention, number, percent, slack_date
from bot.slack_client import make_client
from bot.throttle import CardThrottle
from broadcasts.db import transaction
from broadcasts.models import Broadcast
from jobs.queues import SLACK, queue
from jobs.runtime import Runtime, current

log = logging.getLogger(__name__)

MILESTONES = (25, 50, 75)
REFRESH_JOB = "bot.notifications.refresh_card"


def handle_event(broadcast_id: str, kind: str, data: dict[str, Any]) -> None:
    runtime = current()
    with transaction(runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None or not (broadcast.slack_channel_id and broadcast.slack_card_ts):
            return
        card = cards.card_data(session, broadcast)
        channel, ts = broadcast.slack_channel_id, broadcast.slack_card_ts
    throttle = throttle_for(runtime)
    client = make_client(runtime.settings)
    if kind == "progress":
        if throttle.try_acquire(broadcast_id):
            _edit(client, channel, ts, card)
        elif throttle.claim_trailing(broadcast_id):
            _schedule_refresh(runtime, broadcast_id, throttle.wait_seconds())
        text = _milestone(throttle, card)
    else:
        throttle.force(broadcast_id)
        _edit(client, channel, ts, card)
        text = note_for(kind, data, card)
    if text:
        cards.post_in_thread(client, channel, ts, text)


def throttle_for(runtime: Runtime) -> CardThrottle:
    settings = runtime.settings
    return CardThrottle(
        runtime.redis,
        per_card_seconds=settings.slack_card_update_seconds,
        per_minute=settings.slack_updates_per_minute,
    )


def refresh_card(broadcast_id: str) -> None:
    """The catch-up edit after skipped progress refreshes."""
    runtime = current()
    throttle = throttle_for(runtime)
    throttle.release_trailing(broadcast_id)  # before reading, so no later change is missed
    with transaction(runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None or not (broadcast.slack_channel_id and broadcast.slack_card_ts):
            return
        card = cards.card_data(session, broadcast)
        channel, ts = broadcast.slack_channel_id, broadcast.slack_card_ts
    throttle.force(broadcast_id)
    _edit(make_client(runtime.settings), channel, ts, card)


def _edit(client: Any, channel: str, ts: str, card: CardData) -> None:
    try:
        cards.edit_card(client, channel, ts, card)
    except SlackApiError as exc:
        log.warning(
            "could not edit the card of %s: %s", card.broadcast_id, exc.response.get("error")
        )


def _schedule_refresh(runtime: Runtime, broadcast_id: str, seconds: float) -> None:
    queue(SLACK, runtime.redis).enqueue_in(
        timedelta(seconds=seconds),
        REFRESH_JOB,
        broadcast_id,
        # No fixed job id: re-scheduling while a refresh runs must not touch the running job.
        result_ttl=60,
        failure_ttl=3600,
    )


def _milestone(throttle: CardThrottle, card: CardData) -> str | None:
    reached = [m for m in MILESTONES if card.counts.progress * 100 >= m]
    if not reached or card.status != "sending":
        return None
    top = reached[-1]
    if not throttle.once(f"milestone:{card.broadcast_id}:{top}"):
        return None
    c = card.counts
    return (
        f"📈 {top}% done: {number(c.sent)} sent, {number(c.delivered)} delivered, "
        f"{number(c.failed)} failed so far."
    )


def note_for(kind: str, data: dict[str, Any], card: CardData) -> str | None:
    """The thread message for an event, naming who did it."""
    by = mention(data.get("by"))
    reason = data.get("reason") or data.get("message")
    c = card.counts
    if kind == "started":
        eta = f"; about {duration(card.eta_seconds)}" if card.eta_seconds else ""
        return (
            f"🚀 Started by {by}: {number(c.pending)} recipients at "
            f"{number(card.rate_mps)} msg/s{eta}."
        )
    if kind == "paused":
        if data.get("auto") or data.get("by") in (None, "system"):
            return (
                f"⚠️ Sending was paused automatically: {reason or 'see the card'}. "
                "Press *Resume* once the cause is fixed."
            )
        return f"⏸️ Paused by {by}."
    if kind == "resumed":
        return f"▶️ Resumed by {by}."
    if kind == "cancelled":
        skipped = int(data.get("skipped") or 0)
        return f"🚫 Cancelled by {by}; {number(skipped)} recipients not reached were skipped."
    if kind == "failed":
        return f"❌ Sending stopped: {reason or card.status_reason or 'see the card'}."
    if kind == "completed":
        return (
            f"✅ Completed: {number(c.sent)} sent of {number(c.total)}, "
            f"{number(c.delivered)} delivered, {number(c.read)} read, "
            f"{number(c.responded)} responded, {number(c.failed)} failed "
            f"(response rate {percent(c.response_rate)}). *Report* on the card has the details."
        )
    if kind == "scheduled":
        at = data.get("at")
        when = ""
        if at:
            moment = datetime.fromisoformat(str(at))
            utc = moment.strftime("%Y-%m-%d %H:%M UTC")
            when = f" for {slack_date(moment.timestamp(), utc)} ({utc})"
        return f"⏰ Scheduled by {by}{when}."
    if kind == "unscheduled":
        return f"↩️ Schedule removed by {by}; the broadcast is a draft again."
    if kind == "alert":
        return f"⚠️ {reason or 'Something needs attention on this broadcast.'}"
    return None
