"""Counters stay equal to a recount of recipient rows through any mix of updates."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcasts import service
from broadcasts.enums import RecipientStatus as R
from broadcasts.metrics import Counts, recount, repair_counters, stored_counts
from broadcasts.models import Recipient, utcnow
from broadcasts.recipient_status import (
    apply_delivery_status,
    mark_failed,
    mark_responded,
    mark_sent,
    mark_skipped,
)
from tests.factories import OPERATOR, add_recipients, make_broadcast


def test_counters_equal_recount_after_a_mixed_sequence_of_updates(session: Session) -> None:
    broadcast = make_broadcast(session)
    recipients = add_recipients(session, broadcast, [f"+1415555{i:04d}" for i in range(60)])
    service.start_broadcast(session, broadcast.id, by=OPERATOR)
    rng = random.Random(7)
    now = utcnow()
    for step in range(600):
        r = rng.choice(recipients)
        at = now + timedelta(seconds=step)
        op = rng.choice(
            [
                "claim",
                "sent",
                "failed",
                "skip",
                "delivered",
                "read",
                "wh-failed",
                "wh-sent",
                "respond",
                "stop",
                "duplicate",
            ]
        )
        if op == "claim" and r.status == R.PENDING:
            r.status = R.SENDING
        elif op == "sent":
            mark_sent(
                session,
                r,
                wamid=f"wamid.{r.id}",
                wa_id=r.phone[1:],
                message_status="accepted",
                at=at,
            )
        elif op == "failed":
            mark_failed(session, r, code=131026, title="Message undeliverable", detail=None, at=at)
        elif op == "skip":
            mark_skipped(session, r, reason="opted out")
        elif op in ("delivered", "read", "wh-sent"):
            apply_delivery_status(session, r, op.removeprefix("wh-"), at=at)
        elif op == "wh-failed":
            apply_delivery_status(session, r, "failed", at=at, error_code=131049, error_title="x")
        elif op == "respond":
            mark_responded(session, r, at=at)
        elif op == "stop":
            mark_responded(session, r, at=at, opt_out=True)
        elif op == "duplicate":
            apply_delivery_status(session, r, "read", at=at)
            apply_delivery_status(session, r, "read", at=at)
        session.flush()
    session.refresh(broadcast)
    counted = recount(session, broadcast.id)
    assert stored_counts(broadcast) == counted
    assert counted.total == 60
    # The sequence really exercised every counter.
    assert all(
        getattr(counted, name) > 0
        for name in ("sent", "delivered", "read", "failed", "responded", "opted_out")
    )


def test_statuses_never_move_backwards_and_read_implies_delivered(session: Session) -> None:
    broadcast = make_broadcast(session)
    (r,) = add_recipients(session, broadcast, ["+14155550100"])
    at = utcnow()
    assert apply_delivery_status(session, r, "read", at=at)
    assert (r.status, r.delivered_at, r.sent_at) == (R.READ, at, at)
    assert not apply_delivery_status(session, r, "delivered", at=at + timedelta(seconds=1))
    assert not apply_delivery_status(session, r, "sent", at=at + timedelta(seconds=2))
    assert not mark_failed(session, r, code=1, title="late", detail=None)
    assert r.status == R.READ
    session.refresh(broadcast)
    assert stored_counts(broadcast) == Counts(total=1, sent=1, delivered=1, read=1)


def test_response_rate_is_responded_over_total_recipients(session: Session) -> None:
    broadcast = make_broadcast(session)
    recipients = add_recipients(session, broadcast, [f"+1415555{i:04d}" for i in range(4)])
    at = utcnow()
    for r in recipients[:2]:
        mark_sent(session, r, wamid=f"w{r.id}", wa_id=None, message_status="accepted", at=at)
    assert mark_responded(session, recipients[0], at=at)
    assert not mark_responded(session, recipients[0], at=at)
    session.refresh(broadcast)
    assert stored_counts(broadcast).response_rate == 0.25


def test_stop_reply_counts_as_opt_out_and_stays_equal_to_a_recount(session: Session) -> None:
    broadcast = make_broadcast(session)
    recipients = add_recipients(session, broadcast, ["+14155550100", "+14155550101"])
    at = utcnow()
    for r in recipients:
        apply_delivery_status(session, r, "delivered", at=at)
    assert mark_responded(session, recipients[0], at=at, opt_out=True)
    assert not mark_responded(session, recipients[0], at=at, opt_out=True)
    assert mark_responded(session, recipients[1], at=at)
    session.flush()
    session.refresh(broadcast)
    counts = stored_counts(broadcast)
    assert (counts.responded, counts.opted_out, counts.response_rate) == (1, 1, 0.5)
    assert counts == recount(session, broadcast.id)


def test_repair_restores_counters_from_rows(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, ["+14155550100", "+14155550101"])
    broadcast.sent_count = 99
    session.flush()
    assert repair_counters(session, broadcast.id) == Counts(total=2, pending=2)
    session.refresh(broadcast)
    assert stored_counts(broadcast) == Counts(total=2, pending=2)
    statuses = list(session.scalars(select(Recipient.status)))
    assert statuses == [R.PENDING, R.PENDING]
