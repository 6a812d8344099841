"""The sending engine end to end: real worker, Redis limiter, client, sandbox and database."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from broadcasts import configs, recipient_status, sending
from broadcasts.db import transaction
from broadcasts.enums import BroadcastStatus as S
from broadcasts.enums import RecipientStatus as R
from broadcasts.errors import IllegalTransition, ValidationFailed
from broadcasts.models import Broadcast, Contact, Recipient, utcnow
from broadcasts.recipient_status import apply_delivery_status
from broadcasts.service import get_broadcast
from jobs import broadcast_control, maintenance
from jobs.whatsapp_sync import sync_templates
from kapso.sandbox.config import SandboxConfig
from tests.engine_support import assert_counters_match, drain, new_broadcast, sending_env, work
from tests.factories import OPERATOR


def phones(n: int, start: int = 0) -> list[str]:
    return [f"+1415555{i:04d}" for i in range(start, start + n)]


def recipients(env, broadcast_id: str) -> list[Recipient]:  # type: ignore[no-untyped-def]
    with transaction(env.runtime.sessions) as session:
        return list(
            session.scalars(select(Recipient).where(Recipient.broadcast_id == broadcast_id))
        )


def test_every_recipient_gets_exactly_one_message(db_url: str, redis_url: str) -> None:
    with sending_env(db_url, redis_url) as env:
        bid = new_broadcast(env, phones(120), batch_size=50)
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid) == S.COMPLETED
        sent_to = Counter(m["to"] for m in env.sandbox.messages())
        assert sorted(sent_to) == sorted(p.lstrip("+") for p in phones(120))
        assert set(sent_to.values()) == {1}
        rows = recipients(env, bid)
        assert {r.status for r in rows} == {R.SENT}
        assert all(r.wamid and r.sent_at for r in rows)
        assert_counters_match(env, bid)
        # Every send carried our callback data, naming broadcast and recipient.
        callbacks = {m["callback_data"] for m in env.sandbox.messages()}
        assert callbacks == {f"bb1:{bid}:{r.id}" for r in rows}


def test_permanent_errors_fail_the_recipient_with_code_and_reason(
    db_url: str, redis_url: str
) -> None:
    sandbox = SandboxConfig(
        latency_ms=5,
        throughput=1000,
        pair_rate=False,
        reject_rules={"0131": 131026, "0150": 131050},
    )
    with sending_env(db_url, redis_url, sandbox) as env:
        numbers = [*phones(10), "+14155550131", "+14155550150"]
        bid = new_broadcast(env, numbers)
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid) == S.COMPLETED
        by_phone = {r.phone: r for r in recipients(env, bid)}
        assert by_phone["+14155550131"].status == R.FAILED
        assert by_phone["+14155550131"].error_code == 131026
        assert by_phone["+14155550131"].error_title
        assert by_phone["+14155550150"].error_code == 131050
        with transaction(env.runtime.sessions) as session:
            contact = session.scalar(select(Contact).where(Contact.phone == "+14155550150"))
        # Recorded as the status webhook would: the number is never picked again.
        assert contact is not None and contact.opted_out_at is not None
        assert_counters_match(env, bid)


def test_rate_limit_answers_are_retried_never_failures(db_url: str, redis_url: str) -> None:
    # The number really takes 20/s but the configuration claims 200/s: the sandbox answers 130429.
    sandbox = SandboxConfig(latency_ms=5, throughput=20, pair_rate=False)
    with sending_env(db_url, redis_url, sandbox) as env:
        with transaction(env.runtime.sessions) as session:
            configs.set_pacing(session, "main", by=OPERATOR, throughput_mps=200)
        bid = new_broadcast(env, phones(60))
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid, timeout=120) == S.COMPLETED
        assert env.sandbox.stats()["throughput_rejections"] > 0
        assert {r.status for r in recipients(env, bid)} == {R.SENT}
        assert Counter(m["to"] for m in env.sandbox.messages()).most_common(1)[0][1] == 1
        assert_counters_match(env, bid)


def test_paused_template_stops_the_broadcast_instead_of_failing_everyone(
    db_url: str, redis_url: str
) -> None:
    with sending_env(db_url, redis_url) as env:
        env.sandbox.set_template_status("holiday_promotion", "PAUSED")
        bid = new_broadcast(env, phones(30))
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid, until=frozenset({S.PAUSED, S.FAILED, S.COMPLETED})) == S.PAUSED
        rows = recipients(env, bid)
        assert {r.status for r in rows} == {R.PENDING}
        with transaction(env.runtime.sessions) as session:
            reason = get_broadcast(session, bid).status_reason or ""
        assert "132015" in reason and "paused" in reason.lower()
        assert_counters_match(env, bid)


def test_revoked_credential_fails_the_broadcast_with_the_reason(
    db_url: str, redis_url: str
) -> None:
    with sending_env(db_url, redis_url) as env:
        env.sandbox.revoke_key()
        bid = new_broadcast(env, phones(10))
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid) == S.FAILED
        assert {r.status for r in recipients(env, bid)} == {R.PENDING}


def test_opted_out_contacts_are_skipped_with_a_reason(db_url: str, redis_url: str) -> None:
    with sending_env(db_url, redis_url) as env:
        bid = new_broadcast(env, phones(5))

        with transaction(env.runtime.sessions) as session:
            session.add(Contact(phone=phones(5)[0], opted_out_at=utcnow(), opt_out_reason="STOP"))
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid) == S.COMPLETED
        by_phone = {r.phone: r for r in recipients(env, bid)}
        assert by_phone[phones(5)[0]].status == R.SKIPPED
        assert by_phone[phones(5)[0]].error_title == "contact opted out"
        assert len(env.sandbox.messages()) == 4
        assert_counters_match(env, bid)


def test_pause_stops_new_sends_and_resume_continues_where_it_stopped(
    db_url: str, redis_url: str
) -> None:
    sandbox = SandboxConfig(latency_ms=5, throughput=1000, pair_rate=False)
    with sending_env(db_url, redis_url, sandbox) as env:
        bid = new_broadcast(env, phones(40), batch_size=10, batch_pause_seconds=0.2, rate_mps=20)
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        work(env)  # one batch of 10, then the next is scheduled after the pause
        broadcast_control.pause(env.runtime, bid, by=OPERATOR)
        drain(env, bid, until=frozenset({S.PAUSED}))
        sent_while_paused = len(env.sandbox.messages())
        assert 10 <= sent_while_paused < 40
        work(env)
        assert len(env.sandbox.messages()) == sent_while_paused
        with pytest.raises(IllegalTransition, match="already paused"):
            broadcast_control.pause(env.runtime, bid, by=OPERATOR)
        broadcast_control.resume(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid) == S.COMPLETED
        assert Counter(m["to"] for m in env.sandbox.messages()) == Counter(
            p[1:] for p in phones(40)
        )
        assert_counters_match(env, bid)


def test_cancel_leaves_unsent_recipients_skipped(db_url: str, redis_url: str) -> None:
    with sending_env(db_url, redis_url) as env:
        bid = new_broadcast(env, phones(30), batch_size=10, batch_pause_seconds=30)
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        work(env)
        _, skipped = broadcast_control.cancel(env.runtime, bid, by=OPERATOR)
        assert skipped == 20
        statuses = Counter(r.status for r in recipients(env, bid))
        assert statuses == {R.SENT: 10, R.SKIPPED: 20}
        assert_counters_match(env, bid)


def test_circuit_breaker_pauses_when_a_batch_mostly_fails(db_url: str, redis_url: str) -> None:
    sandbox = SandboxConfig(
        latency_ms=5, throughput=1000, pair_rate=False, reject_rules={"7": 131026}
    )
    with sending_env(db_url, redis_url, sandbox) as env:
        numbers = [f"+1415555{i:03d}7" for i in range(30)] + phones(30, 5000)
        bid = new_broadcast(env, numbers, batch_size=30, failure_threshold=0.5)
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid, until=frozenset({S.PAUSED, S.COMPLETED})) == S.PAUSED
        with transaction(env.runtime.sessions) as session:
            assert "Auto-paused" in (get_broadcast(session, bid).status_reason or "")
        assert_counters_match(env, bid)


def test_start_is_refused_without_recipients_or_with_a_paused_template(
    db_url: str, redis_url: str
) -> None:
    with sending_env(db_url, redis_url) as env:
        empty = new_broadcast(env, [])
        with pytest.raises(ValidationFailed, match="no recipients"):
            broadcast_control.start(env.runtime, empty, by=OPERATOR)
        bid = new_broadcast(env, phones(2))

        env.sandbox.set_template_status("holiday_promotion", "PAUSED")
        sync_templates(env.runtime, "main")
        with pytest.raises(ValidationFailed, match="is PAUSED"):
            broadcast_control.start(env.runtime, bid, by=OPERATOR)


def test_test_send_reaches_one_number_outside_the_metrics(db_url: str, redis_url: str) -> None:
    with sending_env(db_url, redis_url) as env:
        bid = new_broadcast(env, phones(3))
        wamid = broadcast_control.test_send(
            env.runtime, bid, phone="+447400123456", params={"1": "Ana"}, by=OPERATOR
        )
        (message,) = env.sandbox.messages()
        assert message["to"] == "447400123456"
        assert message["callback_data"] == f"bb1:{bid}:test"
        assert env.runtime.redis.exists("bb:rate:100200300:tat")  # it took a slot of the number
        assert wamid
        # Refused before any call to WhatsApp, as Slack's modal and the CLI refuse it.
        with pytest.raises(ValidationFailed, match="Parameter '1' of template .* is missing"):
            broadcast_control.test_send(
                env.runtime, bid, phone="+447400123456", params={}, by=OPERATOR
            )
        assert len(env.sandbox.messages()) == 1
        assert_counters_match(env, bid)


def test_a_schedule_starts_the_broadcast_when_due(db_url: str, redis_url: str) -> None:

    with sending_env(db_url, redis_url) as env:
        bid = new_broadcast(env, phones(5))
        broadcast_control.schedule(env.runtime, bid, utcnow() + timedelta(seconds=1), by=OPERATOR)

        assert maintenance.run_once(env.runtime)["started"] == 0
        time.sleep(1.1)
        assert maintenance.run_once(env.runtime)["started"] == 1
        assert drain(env, bid) == S.COMPLETED
        assert len(env.sandbox.messages()) == 5


def test_claims_of_a_dead_worker_are_released_and_sent_once(db_url: str, redis_url: str) -> None:

    with sending_env(db_url, redis_url, send_claim_grace_seconds=0.2) as env:
        bid = new_broadcast(env, phones(8))
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        with transaction(env.runtime.sessions) as session:  # a worker claims, then dies
            assert len(sending.claim(session, bid, 3)) == 3

        time.sleep(0.3)
        assert maintenance.run_once(env.runtime)["released"] == 3
        assert drain(env, bid) == S.COMPLETED
        assert Counter(m["to"] for m in env.sandbox.messages()) == Counter(p[1:] for p in phones(8))
        assert_counters_match(env, bid)


def test_maintenance_revives_a_broadcast_whose_queue_was_lost(db_url: str, redis_url: str) -> None:

    with sending_env(db_url, redis_url) as env:
        bid = new_broadcast(env, phones(6))
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        env.runtime.redis.flushdb()  # Redis lost the queued lanes

        with transaction(env.runtime.sessions) as session:
            b = session.get(Broadcast, bid)
            assert b is not None
            b.heartbeat_at = b.next_batch_at = utcnow() - timedelta(seconds=30)
        assert maintenance.run_once(env.runtime)["revived"] == 1
        assert drain(env, bid) == S.COMPLETED
        assert len(env.sandbox.messages()) == 6


def test_dead_claims_of_a_cancelled_broadcast_are_skipped_unless_a_webhook_proves_them(
    db_url: str, redis_url: str
) -> None:
    with sending_env(db_url, redis_url, send_claim_grace_seconds=0.2) as env:
        bid = new_broadcast(env, phones(6))
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        with transaction(env.runtime.sessions) as session:  # a worker claims 2, then dies
            claimed = sending.claim(session, bid, 2)
        broadcast_control.cancel(env.runtime, bid, by=OPERATOR)
        time.sleep(0.3)
        assert maintenance.run_once(env.runtime)["released"] == 2
        rows = {r.id: r for r in recipients(env, bid)}
        assert {rows[c.id].status for c in claimed} == {R.SKIPPED}
        assert rows[claimed[0].id].error_title == recipient_status.UNKNOWN_OUTCOME
        assert_counters_match(env, bid)
        # WhatsApp had accepted the first one: its status webhook moves it on.
        with transaction(env.runtime.sessions) as session:
            first = session.get(Recipient, claimed[0].id)
            assert first is not None
            assert apply_delivery_status(session, first, "delivered", at=utcnow(), wamid="wamid.X")
        rows = {r.id: r for r in recipients(env, bid)}
        assert rows[claimed[0].id].status == R.DELIVERED
        assert_counters_match(env, bid)
