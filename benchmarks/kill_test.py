"""Reliability test: SIGKILL the worker three times at random moments and flush Redis once while a
5,000-recipient broadcast sends, then prove from the sandbox's record that every recipient got
exactly one message and that every recipient row is terminal and matches the counters.

Runs the real processes (sandbox posting signed status webhooks → web server → inbox → worker) on
a fresh PostgreSQL database. `make kill-test`; exits non-zero when a check fails.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections import Counter

from redis import Redis
from sqlalchemy import func, select

from benchmarks.stack import OPERATOR, Stack, fresh_postgres, running
from broadcasts.db import transaction
from broadcasts.enums import RecipientStatus as R
from broadcasts.metrics import recount, stored_counts
from broadcasts.models import InboxEvent, Recipient
from broadcasts.service import get_broadcast
from jobs import broadcast_control
from jobs.runtime import install

REDIS_URL = os.environ.get("KILL_TEST_REDIS_URL", "redis://127.0.0.1:6379/10")
RECIPIENTS = int(os.environ.get("KILL_TEST_RECIPIENTS", "5000"))
RATE = int(os.environ.get("KILL_TEST_RATE", "150"))
# Its own database name lets two checkouts run the kill test on one PostgreSQL server at once.
DATABASE = os.environ.get("KILL_TEST_DATABASE", "bb_kill_test")
TERMINAL = {R.SENT, R.DELIVERED, R.READ, R.FAILED, R.SKIPPED}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main() -> int:
    rng = random.Random(int(os.environ.get("KILL_TEST_SEED", str(int(time.time())))))
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    stack = Stack(
        fresh_postgres(DATABASE),
        REDIS_URL,
        throughput=RATE,
        latency_ms=150,
        webhooks=True,
        sandbox_speed=10,
        env_extra={"SEND_CLAIM_GRACE_SECONDS": "45", "INBOX_REQUEUE_AFTER_SECONDS": "5"},
    )
    with running(stack):
        stack.start_sandbox()
        stack.start_web()
        broadcast_id = stack.prepare(RECIPIENTS, batch_size=500, pause=0.0)
        stack.start_worker("worker")
        runtime = stack.runtime()
        install(runtime)
        time.sleep(1.5)
        broadcast_control.start(runtime, broadcast_id, by=OPERATOR)
        expected = RECIPIENTS / RATE
        log(
            f"sending {RECIPIENTS} recipients at {RATE}/s (~{expected:.0f} s without interruptions)"
        )
        for kill in range(3):
            time.sleep(rng.uniform(0.1, 0.25) * expected)
            log(f"SIGKILL worker ({len(stack.sandbox_messages())} accepted so far)")
            stack.kill("worker")
            time.sleep(rng.uniform(0.5, 3.0))
            stack.start_worker("worker")
            log(f"worker restarted ({kill + 1}/3)")
        time.sleep(rng.uniform(0.05, 0.15) * expected)
        log(f"FLUSHDB on Redis ({len(stack.sandbox_messages())} accepted so far)")
        redis.flushdb()
        deadline = time.monotonic() + expected * 4 + 300
        while time.monotonic() < deadline:
            with transaction(runtime.sessions) as session:
                status = get_broadcast(session, broadcast_id).status
                unsettled = session.scalar(
                    select(func.count()).where(
                        Recipient.broadcast_id == broadcast_id, Recipient.status.not_in(TERMINAL)
                    )
                )
                unprocessed = session.scalar(
                    select(func.count()).where(InboxEvent.processed_at.is_(None))
                )
            if status == "completed" and not unsettled and not unprocessed:
                break
            time.sleep(2)
        log(f"broadcast {status}; {unsettled} rows not terminal; {unprocessed} webhooks pending")
        time.sleep(3)  # late duplicate statuses
        messages = stack.sandbox_messages()
        with transaction(runtime.sessions) as session:
            broadcast = get_broadcast(session, broadcast_id)
            stored, counted = stored_counts(broadcast), recount(session, broadcast_id)
            rows = list(
                session.execute(
                    select(Recipient.phone, Recipient.status, Recipient.wamid).where(
                        Recipient.broadcast_id == broadcast_id
                    )
                )
            )
        runtime.close()
    per_phone = Counter(m["to"] for m in messages)
    wamid_of = {m["to"]: m["wamid"] for m in messages}
    checks = {
        "broadcast completed": status == "completed",
        f"every recipient got a message ({len(per_phone)} of {RECIPIENTS})": len(per_phone)
        == RECIPIENTS,
        f"no one got two (max {max(per_phone.values())})": max(per_phone.values()) == 1,
        "every recipient row is terminal": all(s in TERMINAL for _, s, _ in rows),
        "every sent row has the wamid WhatsApp gave": all(
            w == wamid_of.get(p.lstrip("+")) for p, s, w in rows if s != R.SKIPPED
        ),
        f"counters equal a recount ({stored.as_dict()})": stored == counted,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
