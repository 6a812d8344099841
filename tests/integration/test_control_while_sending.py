"""Control while sending, with the worker users run (`broadcast-bot worker`, as in the Procfile):
pause and cancel in the middle of a batch stop new sends, the lane's background tasks never die
silently, and several broadcasts send at once while other work keeps flowing."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from broadcasts import configs
from broadcasts.db import transaction
from broadcasts.enums import BroadcastStatus as S
from broadcasts.enums import RecipientStatus as R
from broadcasts.models import InboxEvent, Recipient
from jobs import broadcast_control, inbox, keys, sender
from jobs.runtime import Runtime
from jobs.whatsapp_sync import sync_templates
from kapso.sandbox.config import SandboxConfig
from tests.engine_support import (
    Env,
    assert_counters_match,
    new_broadcast,
    sending_env,
    status_of,
)
from tests.factories import OPERATOR

RATE = 50.0
# Nothing new starts later than this after the pause is stored: the watcher polls every 0.5 s
# and requests already on the wire may still land. The old lane, whose watcher died, sent the
# rest of its batch (hundreds) after a pause.
STOP_WINDOW_SECONDS = 1.0
PACES = {
    "default pace (batches of 500, 10 s apart)": {"batch_size": 500, "batch_pause_seconds": 10},
    "unpaused pipeline (batches of 50)": {"batch_size": 50, "batch_pause_seconds": 0},
}


def phones(n: int, start: int = 0) -> list[str]:
    return [f"+1415555{i:04d}" for i in range(start, start + n)]


@contextmanager
def worker_process(env: Env, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`broadcast-bot worker` as a real process on the test databases."""
    settings = env.runtime.settings
    environ = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "MAINTENANCE_INTERVAL_SECONDS": "0.5",
    }
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "worker", *args], env=environ)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate, timeout: float = 120.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def sent_to_sandbox(env: Env) -> list[dict[str, object]]:
    return [m for m in env.sandbox.messages() if m.get("template")]


def rows(env: Env, broadcast_id: str) -> list[Recipient]:
    with transaction(env.runtime.sessions) as session:
        return list(
            session.scalars(select(Recipient).where(Recipient.broadcast_id == broadcast_id))
        )


@pytest.mark.parametrize("pace", list(PACES))
def test_pause_in_the_middle_of_a_batch_stops_new_sends_and_resume_finishes_once(
    db_url: str, redis_url: str, pace: str
) -> None:
    with sending_env(db_url, redis_url) as env, worker_process(env):
        bid = new_broadcast(env, phones(400), rate_mps=RATE, **PACES[pace])  # type: ignore[arg-type]
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        wait_for(lambda: len(sent_to_sandbox(env)) >= 40, what="sending to start")
        broadcast_control.pause(env.runtime, bid, by=OPERATOR)
        paused_at = time.time()
        wait_for(lambda: not any(r.status == R.SENDING for r in rows(env, bid)), what="settle")
        late = [
            m for m in sent_to_sandbox(env) if float(m["time"]) > paused_at + STOP_WINDOW_SECONDS
        ]  # type: ignore[arg-type]
        assert late == []
        sent_before = len(sent_to_sandbox(env))
        assert sent_before < 400  # paused well before the end of the batch
        statuses = Counter(r.status for r in rows(env, bid))
        assert set(statuses) <= {R.SENT, R.PENDING}
        assert statuses[R.SENT] == sent_before
        assert status_of(env, bid) == S.PAUSED
        assert_counters_match(env, bid)

        broadcast_control.resume(env.runtime, bid, by=OPERATOR)  # one batch of 500 holds all 400
        wait_for(lambda: status_of(env, bid) == S.COMPLETED, what="completion")
        sent = Counter(m["to"] for m in sent_to_sandbox(env))
        assert sorted(sent) == sorted(p.lstrip("+") for p in phones(400))
        assert set(sent.values()) == {1}
        assert_counters_match(env, bid)


@pytest.mark.parametrize("pace", list(PACES))
def test_cancel_in_the_middle_of_a_batch_stops_new_sends_and_skips_the_rest(
    db_url: str, redis_url: str, pace: str
) -> None:
    with sending_env(db_url, redis_url) as env, worker_process(env):
        bid = new_broadcast(env, phones(400), rate_mps=RATE, **PACES[pace])  # type: ignore[arg-type]
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        wait_for(lambda: len(sent_to_sandbox(env)) >= 40, what="sending to start")
        broadcast_control.cancel(env.runtime, bid, by=OPERATOR)
        cancelled_at = time.time()
        wait_for(lambda: not any(r.status == R.SENDING for r in rows(env, bid)), what="settle")
        time.sleep(1.5)  # anything still going out would reach the sandbox by now
        late = [
            m for m in sent_to_sandbox(env) if float(m["time"]) > cancelled_at + STOP_WINDOW_SECONDS
        ]  # type: ignore[arg-type]
        assert late == []
        statuses = Counter(r.status for r in rows(env, bid))
        assert set(statuses) <= {R.SENT, R.SKIPPED}
        assert statuses[R.SENT] == len(sent_to_sandbox(env)) < 400
        assert status_of(env, bid) == S.CANCELLED
        assert_counters_match(env, bid)


def test_a_failing_lane_watcher_is_logged_and_stops_the_lane(
    db_url: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The original failure: a thread-local lock renewed from another thread raises a plain
    AttributeError in the watcher. The lane must say so and stop, not send on unwatched."""
    with sending_env(db_url, redis_url) as env:
        bid = new_broadcast(env, phones(300), rate_mps=RATE, batch_size=500)
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        lock = env.runtime.redis.lock(keys.lane_lock(bid, 0), timeout=5)  # thread-local
        assert lock.acquire(blocking=False)
        with caplog.at_level(logging.ERROR, logger="jobs.sender"):
            result = sender._run_locked(env.runtime, bid, 0, lock)
        assert result == "crashed"
        assert any("watcher failed" in r.getMessage() for r in caplog.records)
        sent = len(sent_to_sandbox(env))
        assert 0 < sent < 300 // 2  # stopped within about a second of starting, not at the end
        # Nothing is left claimed: what was not attempted went back to pending.
        statuses = Counter(r.status for r in rows(env, bid))
        assert set(statuses) <= {R.SENT, R.PENDING}
        assert statuses[R.SENT] == sent
        assert_counters_match(env, bid)


def _second_number(env: Env) -> None:
    with transaction(env.runtime.sessions) as session:
        configs.add_config(
            session,
            name="second",
            provider="sandbox",
            phone_number_id="100200301",
            business_account_id="900800700",
            api_base_url=env.sandbox.base_url,
            credential_env="KAPSO_API_KEY",
            agent="agent",
            throughput_mps=1000,
            batch_size=500,
            batch_pause_seconds=0,
            by=OPERATOR,
        )
    sync_templates(env.runtime, "second")


def _new_on(env: Env, config: str, numbers: list[str]) -> str:
    from broadcasts import service
    from broadcasts.recipients import NewRecipient, insert_recipients

    with transaction(env.runtime.sessions) as session:
        broadcast = service.create_broadcast(
            session,
            name=f"B{time.monotonic_ns()}",
            config_ref=config,
            template_ref="holiday_promotion",
            by=OPERATOR,
            rate_mps=20,
            batch_size=500,
            batch_pause_seconds=0,
        )
        insert_recipients(session, broadcast, [NewRecipient(p, {"1": "Ana"}) for p in numbers])
        return broadcast.id


def _store_webhook(runtime: Runtime, body: str) -> int:
    with runtime.engine.begin() as conn:
        [(event_id, _size)] = inbox.insert_events(
            conn, [inbox.NewEvent("meta", inbox.dedup_key("meta", body.encode()), None, body)]
        )
    inbox.kick(runtime.redis)
    return event_id


def test_one_worker_sends_two_broadcasts_at_once_and_keeps_processing_webhooks(
    db_url: str, redis_url: str
) -> None:
    sandbox = SandboxConfig(latency_ms=5, throughput=1000, pair_rate=False)
    with sending_env(db_url, redis_url, sandbox) as env:
        _second_number(env)
        first = _new_on(env, "main", phones(200))
        second = _new_on(env, "second", phones(200, start=500))
        with worker_process(env):
            broadcast_control.start(env.runtime, first, by=OPERATOR)
            broadcast_control.start(env.runtime, second, by=OPERATOR)

            def both_sending() -> bool:
                numbers = Counter(str(m["phone_number_id"]) for m in sent_to_sandbox(env))
                return numbers["100200300"] >= 20 and numbers["100200301"] >= 20

            wait_for(both_sending, what="both numbers to send")
            # A webhook body stored now is processed while both still send (10 s at 20/s).
            body = '{"object": "whatsapp_business_account", "entry": []}'
            event_id = _store_webhook(env.runtime, body)

            def processed() -> bool:
                with transaction(env.runtime.sessions) as session:
                    return session.get(InboxEvent, event_id).processed_at is not None  # type: ignore[union-attr]

            wait_for(processed, timeout=30, what="the webhook to be processed")
            assert status_of(env, first) == S.SENDING
            assert status_of(env, second) == S.SENDING
            wait_for(lambda: status_of(env, first) == S.COMPLETED, what="first to complete")
            wait_for(lambda: status_of(env, second) == S.COMPLETED, what="second to complete")
        assert len(sent_to_sandbox(env)) == 400
        assert_counters_match(env, first)
        assert_counters_match(env, second)
