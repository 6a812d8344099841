"""Follow-ups through the service layer on both databases: retry failed, duplicate, audit trail."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcasts import audit, contacts, follow_ups, service
from broadcasts.db import transaction
from broadcasts.enums import BroadcastStatus as S
from broadcasts.enums import RecipientStatus as R
from broadcasts.errors import IllegalTransition, ValidationFailed
from broadcasts.metrics import recount, stored_counts
from broadcasts.models import Broadcast, Recipient, utcnow
from broadcasts.recipient_status import (
    UNKNOWN_OUTCOME,
    apply_delivery_status,
    mark_failed,
    mark_sent,
    mark_skipped,
)
from jobs import broadcast_control
from kapso.errors import resend_wait
from tests.engine_support import assert_counters_match, drain, new_broadcast, sending_env
from tests.factories import OPERATOR, add_recipients, make_broadcast

PHONES = [f"+1415555{i:04d}" for i in range(12)]


def _by_phone(session: Session, broadcast_id: str) -> dict[str, Recipient]:
    rows = session.scalars(select(Recipient).where(Recipient.broadcast_id == broadcast_id))
    return {r.phone: r for r in rows}


def _finished_with_every_outcome(session: Session) -> Broadcast:
    """A completed broadcast whose 12 recipients ended every way a recipient can end."""
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, PHONES)
    service.start_broadcast(session, broadcast.id, by=OPERATOR)
    r = _by_phone(session, broadcast.id)
    now = utcnow()
    for i, phone in enumerate(PHONES[:3]):
        mark_sent(session, r[phone], wamid=f"wamid.{i}", wa_id=None, message_status=None)
    apply_delivery_status(session, r[PHONES[1]], "delivered", at=now)
    apply_delivery_status(session, r[PHONES[2]], "read", at=now)

    def fail(phone: str, code: int | None, at: object = None) -> None:
        mark_failed(session, r[phone], code=code, title=f"error {code}", detail=None, at=at)  # type: ignore[arg-type]

    fail(PHONES[3], 131026)  # not on WhatsApp: permanent
    fail(PHONES[4], 132012)  # bad parameter format: permanent
    fail(PHONES[5], 131000)  # unknown error after every attempt: retryable
    fail(PHONES[6], None)  # network errors until attempts ran out: retryable
    fail(PHONES[7], 131049, now - timedelta(hours=2))  # marketing limit, too recent
    fail(PHONES[8], 131049, now - timedelta(hours=25))  # marketing limit, a day ago
    mark_skipped(session, r[PHONES[9]], reason=UNKNOWN_OUTCOME)  # may have been sent
    # PHONES[10] stays pending (never attempted); PHONES[11] opts out after failing retryably.
    fail(PHONES[11], 131016)
    contacts.set_opt_out(session, PHONES[11], True, reason="STOP")
    service.complete_broadcast(session, broadcast)
    return broadcast


def test_retry_takes_retryable_failures_and_never_attempted_recipients(session: Session) -> None:
    original = _finished_with_every_outcome(session)
    before = stored_counts(original)
    result = follow_ups.retry_failed(session, original.id, by=OPERATOR, resend_wait=resend_wait)
    retry = result.broadcast
    assert (retry.status, retry.retry_of_id) == (S.DRAFT, original.id)
    assert retry.name == "Holiday Sale (retry)"
    assert (retry.config_id, retry.template_id) == (original.config_id, original.template_id)
    taken = _by_phone(session, retry.id)
    assert sorted(taken) == sorted([PHONES[5], PHONES[6], PHONES[8], PHONES[10]])
    assert {r.status for r in taken.values()} == {R.PENDING}
    assert {r.attempts for r in taken.values()} == {0}
    assert all(r.params == {"1": "Ana"} for r in taken.values())
    s = result.selection
    assert (s.failed, s.unsent) == (3, 1)
    assert dict(s.left_out) == {
        "delivered": 3,
        "permanent": 2,
        "marketing_limit": 1,
        "outcome_unknown": 1,
        "opted_out": 1,
    }
    assert s.marketing_limit_until is not None
    explained = s.explain()
    assert "4 to retry (3 failed with a retryable error, 1 never attempted)" in explained
    assert "131049" in explained and "retry them after" in explained
    # The original stays exactly as it was: read-only, same counters, now linked.
    session.refresh(original)
    assert original.status == S.COMPLETED
    assert stored_counts(original) == before == recount(session, original.id)
    assert stored_counts(retry) == recount(session, retry.id)
    assert stored_counts(retry).total == 4
    assert follow_ups.retries_of(session, original.id) == [retry]
    actions = [e.action for e in audit.history(session, original.id)]
    assert actions[-1] == "broadcast.retry"
    assert [e.action for e in audit.history(session, retry.id)] == [
        "broadcast.create",
        "broadcast.retry_of",
    ]


def test_marketing_limit_failures_wait_24_hours_and_a_second_retry_takes_only_new_ones(
    session: Session,
) -> None:
    original = _finished_with_every_outcome(session)
    first = follow_ups.retry_failed(
        session, original.id, by=OPERATOR, resend_wait=resend_wait
    ).broadcast
    with pytest.raises(ValidationFailed, match="Nothing to retry in 'Holiday Sale'") as info:
        follow_ups.retry_failed(session, original.id, by=OPERATOR, resend_wait=resend_wait)
    assert "already in an earlier retry" in str(info.value)
    assert "less than 24 h ago" in str(info.value)
    later = utcnow() + timedelta(hours=23)
    second = follow_ups.retry_failed(
        session, original.id, by=OPERATOR, resend_wait=resend_wait, now=later
    ).broadcast
    assert sorted(_by_phone(session, second.id)) == [PHONES[7]]
    assert (first.name, second.name) == ("Holiday Sale (retry)", "Holiday Sale (retry 2)")
    # A retry of a retry is numbered on, not "(retry) (retry)".
    service.cancel_broadcast(session, second.id, by=OPERATOR)
    third = follow_ups.retry_failed(
        session, second.id, by=OPERATOR, resend_wait=resend_wait
    ).broadcast
    assert third.name == "Holiday Sale (retry 3)"
    assert third.retry_of_id == second.id


def test_retry_is_refused_until_the_broadcast_has_finished(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, PHONES[:2])
    with pytest.raises(IllegalTransition, match="is draft; retry its failures once it has"):
        follow_ups.retry_failed(session, broadcast.id, by=OPERATOR, resend_wait=resend_wait)
    service.start_broadcast(session, broadcast.id, by=OPERATOR)
    with pytest.raises(IllegalTransition, match="is sending"):
        follow_ups.retry_failed(session, broadcast.id, by=OPERATOR, resend_wait=resend_wait)
    assert session.scalar(select(Broadcast).where(Broadcast.retry_of_id == broadcast.id)) is None


def test_nothing_to_retry_when_everyone_was_reached(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, PHONES[:2])
    service.start_broadcast(session, broadcast.id, by=OPERATOR)
    for i, r in enumerate(_by_phone(session, broadcast.id).values()):
        mark_sent(session, r, wamid=f"w{i}", wa_id=None, message_status=None)
    service.complete_broadcast(session, broadcast)
    with pytest.raises(ValidationFailed, match="every recipient reached WhatsApp"):
        follow_ups.retry_failed(session, broadcast.id, by=OPERATOR, resend_wait=resend_wait)


def test_cancelled_broadcast_retries_its_skipped_recipients(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, PHONES[:4])
    service.cancel_broadcast(session, broadcast.id, by=OPERATOR)
    retry = follow_ups.retry_failed(
        session, broadcast.id, by=OPERATOR, resend_wait=resend_wait
    ).broadcast
    assert sorted(_by_phone(session, retry.id)) == sorted(PHONES[:4])


def test_duplicate_copies_configuration_template_pacing_and_recipients(session: Session) -> None:
    original = _finished_with_every_outcome(session)
    draft = make_broadcast(session, "Spring")
    add_recipients(session, draft, PHONES[:3])
    service.update_pacing(session, draft.id, by=OPERATOR, batch_size=40, rate_mps=12)
    copy = follow_ups.duplicate_broadcast(session, draft.id, by=OPERATOR).broadcast
    assert (copy.name, copy.status, copy.batch_size, copy.rate_mps) == (
        "Spring (copy)",
        S.DRAFT,
        40,
        12,
    )
    assert sorted(_by_phone(session, copy.id)) == sorted(PHONES[:3])

    result = follow_ups.duplicate_broadcast(session, original.id, by=OPERATOR, name="Again")
    again = result.broadcast
    rows = _by_phone(session, again.id)
    # Everyone but the contact that opted out, all pending again, no history carried over.
    assert sorted(rows) == sorted(p for p in PHONES if p != PHONES[11])
    assert (result.copied, result.opted_out) == (11, 1)
    assert {r.status for r in rows.values()} == {R.PENDING}
    assert all(r.wamid is None and r.error_code is None for r in rows.values())
    assert (again.name, again.retry_of_id) == ("Again", None)
    assert stored_counts(again) == recount(session, again.id)
    assert original.status == S.COMPLETED


def test_audit_trail_reads_as_sentences(session: Session) -> None:
    original = _finished_with_every_outcome(session)
    follow_ups.retry_failed(session, original.id, by=OPERATOR, resend_wait=resend_wait)
    lines = audit.entries(session, original.id)
    assert [line.action for line in lines] == [
        "broadcast.create",
        "broadcast.start",
        "broadcast.complete",
        "broadcast.retry",
    ]
    assert lines[0].summary.startswith("created it with template holiday_promotion")
    assert lines[1].summary == "started sending (draft → sending)"
    assert lines[3].summary.startswith("made a retry draft with 4 recipients")
    assert "left out:" in lines[3].summary
    assert all(line.actor for line in lines)
    assert [line.action for line in audit.entries(session, original.id, limit=2)] == [
        "broadcast.complete",
        "broadcast.retry",
    ]
    assert audit.count(session, original.id) == 4


def test_retry_of_a_broadcast_failed_on_a_revoked_key_reaches_everyone_once(
    db_url: str, redis_url: str
) -> None:
    phones = [f"+1415555{i:04d}" for i in range(15)]
    with sending_env(db_url, redis_url) as env:
        env.sandbox.revoke_key()
        bid = new_broadcast(env, phones)
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid) == S.FAILED
        env.sandbox.restore_key()
        with transaction(env.runtime.sessions) as session:
            retry_id = follow_ups.retry_failed(
                session, bid, by=OPERATOR, resend_wait=resend_wait
            ).broadcast.id
        broadcast_control.start(env.runtime, retry_id, by=OPERATOR)
        assert drain(env, retry_id) == S.COMPLETED
        sent_to = sorted(m["to"] for m in env.sandbox.messages())
        assert sent_to == sorted(p.lstrip("+") for p in phones)
        assert_counters_match(env, retry_id)
        assert_counters_match(env, bid)
        with transaction(env.runtime.sessions) as session:
            original = service.get_broadcast(session, bid)
            assert (original.status, original.pending_count) == (S.FAILED, 15)


def test_two_people_retrying_at_once_never_take_the_same_recipients(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        broadcast = make_broadcast(session)
        add_recipients(session, broadcast, PHONES[:5])
        service.cancel_broadcast(session, broadcast.id, by=OPERATOR)
        bid = broadcast.id
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def press() -> None:
        start.wait()
        try:
            with transaction(sessions) as s:
                retry = follow_ups.retry_failed(s, bid, by=OPERATOR, resend_wait=resend_wait)
                outcomes.append(f"made {retry.selection.total}")
        except ValidationFailed as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=press) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = [o for o in outcomes if o.startswith("made")]
    refused = [o for o in outcomes if not o.startswith("made")]
    assert made == ["made 5"], outcomes
    assert len(refused) == 1 and "5 are already in an earlier retry" in refused[0], outcomes
    with transaction(sessions) as session:
        in_retries = session.scalars(
            select(Recipient.phone).where(
                Recipient.broadcast_id.in_(select(Broadcast.id).where(Broadcast.retry_of_id == bid))
            )
        ).all()
    assert sorted(in_retries) == sorted(PHONES[:5])
