"""`Report`: the per-recipient CSV and a chart (funnel, progress) in the card's thread."""

from __future__ import annotations

import io
import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.slack.blocks.card import other_rates_text
from bot.slack.blocks.kit import mention, number, percent
from bot.slack.chart import report_chart
from bot.slack.client import make_client
from broadcasts.db import transaction
from broadcasts.metrics import stored_counts
from broadcasts.models import Broadcast, Recipient
from broadcasts.report import write_recipient_report
from jobs.runtime import current

log = logging.getLogger(__name__)

MAX_CHART_POINTS = 20_000


def post_report(broadcast_id: str, user_id: str) -> None:
    runtime = current()
    with transaction(runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None or not (broadcast.channel_id and broadcast.card_message_id):
            return
        out = io.StringIO()
        rows = write_recipient_report(session, broadcast, out)
        counts = stored_counts(broadcast)
        sent, delivered = _times(session, broadcast_id)
        name, channel, ts = broadcast.name, broadcast.channel_id, broadcast.card_message_id
    funnel = [
        ("Total", counts.total),
        ("Sent", counts.sent),
        ("Delivered", counts.delivered),
        ("Read", counts.read),
        ("Responded", counts.responded),
        ("Failed", counts.failed),
    ]
    png = report_chart(name, funnel, sent, delivered)
    client = make_client(runtime.settings)
    slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")[:60] or "broadcast"
    client.files_upload_v2(
        channel=channel,
        thread_ts=ts,
        file_uploads=[
            {
                "filename": f"{slug}_recipients.csv",
                "content": out.getvalue(),
                "title": f"{name}: every recipient",
            },
            {
                "filename": f"{slug}_chart.png",
                "content": png,
                "title": f"{name}: delivery funnel and progress",
            },
        ],
        initial_comment=(
            f"📊 Report for {mention(user_id)}: {number(rows)} recipients — "
            f"{number(counts.sent)} sent, {number(counts.delivered)} delivered, "
            f"{number(counts.read)} read, {number(counts.responded)} responded, "
            f"{number(counts.failed)} failed, {number(counts.opted_out)} opted out; "
            f"response rate {percent(counts.response_rate)} (responded ÷ total recipients). "
            f"{other_rates_text(counts)}."
        ),
    )
    log.info("report of %s posted in %s/%s", broadcast_id, channel, ts)


def _times(session: Session, broadcast_id: str) -> tuple[list[datetime], list[datetime]]:
    sent = list(
        session.scalars(
            select(Recipient.sent_at)
            .where(Recipient.broadcast_id == broadcast_id, Recipient.sent_at.is_not(None))
            .order_by(Recipient.sent_at)
            .limit(MAX_CHART_POINTS)
        )
    )
    delivered = list(
        session.scalars(
            select(Recipient.delivered_at)
            .where(Recipient.broadcast_id == broadcast_id, Recipient.delivered_at.is_not(None))
            .order_by(Recipient.delivered_at)
            .limit(MAX_CHART_POINTS)
        )
    )
    return [t for t in sent if t], [t for t in delivered if t]
