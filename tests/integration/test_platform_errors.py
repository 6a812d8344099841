"""What real WhatsApp and Kapso errors do to a broadcast, through the one error table."""

from __future__ import annotations

from sqlalchemy import select

from broadcasts.db import transaction
from broadcasts.enums import BroadcastStatus as S
from broadcasts.enums import RecipientStatus as R
from broadcasts.models import Broadcast, Contact, Recipient
from jobs import broadcast_control
from kapso.sandbox.config import SandboxConfig
from tests.engine_support import assert_counters_match, drain, new_broadcast, sending_env
from tests.factories import OPERATOR


def phones(n: int) -> list[str]:
    return [f"+1415556{i:04d}" for i in range(n)]


def rows(env, broadcast_id: str) -> list[Recipient]:  # type: ignore[no-untyped-def]
    with transaction(env.runtime.sessions) as session:
        return list(
            session.scalars(select(Recipient).where(Recipient.broadcast_id == broadcast_id))
        )


def reason(env, broadcast_id: str) -> str:  # type: ignore[no-untyped-def]
    with transaction(env.runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return str(broadcast.status_reason or "")


def slow_sandbox(**rules: object) -> SandboxConfig:
    # A modest rate keeps few requests in flight when the first error comes back.
    return SandboxConfig(latency_ms=20, throughput=20, pair_rate=False, **rules)  # type: ignore[arg-type]


def test_an_account_level_error_pauses_after_a_handful_and_fails_nobody(
    db_url: str, redis_url: str
) -> None:
    with sending_env(db_url, redis_url, slow_sandbox(reject_rules={"": 131063})) as env:
        bid = new_broadcast(env, phones(120))  # the default batch is 500
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid, until=frozenset({S.PAUSED, S.FAILED, S.COMPLETED})) == S.PAUSED
        attempts = env.sandbox.stats()["codes"].get("131063", 0)
        assert 1 <= attempts <= 5
        recipients = rows(env, bid)
        assert not [r for r in recipients if r.status == R.FAILED]
        assert {r.status for r in recipients} == {R.PENDING}  # all kept for the resume
        assert "131063" in reason(env, bid)
        assert_counters_match(env, bid)


def test_a_revoked_credential_fails_the_broadcast_and_a_payment_problem_pauses_it(
    db_url: str, redis_url: str
) -> None:
    with sending_env(db_url, redis_url, slow_sandbox(reject_rules={"": 131042})) as env:
        bid = new_broadcast(env, phones(30))
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid, until=frozenset({S.PAUSED, S.FAILED, S.COMPLETED})) == S.PAUSED
        assert "131042" in reason(env, bid) and "payment" in reason(env, bid)
        env.sandbox.revoke_key()
        broadcast_control.resume(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid, until=frozenset({S.PAUSED, S.FAILED, S.COMPLETED})) == S.FAILED
        assert "190" in reason(env, bid)
        assert not [r for r in rows(env, bid) if r.status == R.FAILED]


def test_a_run_of_the_same_unknown_code_pauses_with_metas_message(
    db_url: str, redis_url: str
) -> None:
    with sending_env(db_url, redis_url, slow_sandbox(reject_rules={"": 139999})) as env:
        bid = new_broadcast(env, phones(40))
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid, until=frozenset({S.PAUSED, S.FAILED, S.COMPLETED})) == S.PAUSED
        assert "139999" in reason(env, bid) and "Rejected" in reason(env, bid)
        assert not [r for r in rows(env, bid) if r.status == R.FAILED]
        assert_counters_match(env, bid)


def test_kapso_marketing_stop_skips_and_opts_out_instead_of_failing(
    db_url: str, redis_url: str
) -> None:
    stopped = "+14155560007"
    rules = {"0007": "marketing_preference_stopped"}
    with sending_env(db_url, redis_url, slow_sandbox(reject_rules=rules)) as env:
        with transaction(env.runtime.sessions) as session:
            session.add(Contact(phone=stopped, source="import", attributes={}))
        bid = new_broadcast(env, phones(10))
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid) == S.COMPLETED
        by_phone = {r.phone: r for r in rows(env, bid)}
        assert by_phone[stopped].status == R.SKIPPED
        assert "marketing" in str(by_phone[stopped].error_title)
        assert {r.status for p, r in by_phone.items() if p != stopped} == {R.SENT}
        with transaction(env.runtime.sessions) as session:
            contact = session.scalar(select(Contact).where(Contact.phone == stopped))
            assert contact is not None and contact.opted_out_at is not None
        assert_counters_match(env, bid)
