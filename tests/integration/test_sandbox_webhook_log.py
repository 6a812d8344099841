"""The sandbox's own record of what it posted and accepted, with times, for latency benchmarks."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from kapso.sandbox import run_sandbox
from tests.integration.test_sandbox_webhooks import (
    Receiver,
    config,
    meta_events,
    send_all,
)

NUMBERS = [f"+155540{i:04d}7" for i in range(1, 11)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def wait_for(done: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    # A generous upper bound for a condition, not a timing assertion.
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}")
        time.sleep(0.05)


def test_every_posted_status_and_reply_is_logged_with_when_it_was_posted_and_acked(
    receiver: Receiver,
) -> None:
    with run_sandbox(config(receiver.url, reply_rate=1.0, duplicate_rate=0.0)) as sb:
        wamids = send_all(sb, NUMBERS)

        def complete() -> bool:
            statuses, messages = meta_events(receiver)
            reads = {s["id"] for s in statuses if s["status"] == "read"}
            return reads >= set(wamids.values()) and len(messages) == len(NUMBERS)

        receiver.wait_for(complete, "a read status and a reply for every recipient")
        log = sb.webhooks()
        only_replies = sb.webhooks(kind="message")
        accepted = {m["wamid"]: m for m in sb.messages()}
    statuses, messages = meta_events(receiver)
    logged_statuses = Counter((e["id"], e["status"]) for e in log if e["kind"] == "status")
    assert logged_statuses == Counter((s["id"], s["status"]) for s in statuses)
    assert {e["id"] for e in only_replies} == {m["id"] for m in messages}
    assert {e["kind"] for e in only_replies} == {"message"}
    for event in log:
        assert event["acked_at"] is not None and event["emitted_at"] <= event["acked_at"]
        assert event["attempts"] == 1
    # A status is posted after the send that caused it was accepted.
    for event in log:
        if event["kind"] == "status":
            assert event["emitted_at"] >= accepted[event["id"]]["time"]


def test_accepted_messages_record_arrival_before_acceptance() -> None:
    with run_sandbox(config("", latency_ms=30, webhook_url=None)) as sb:
        send_all(sb, NUMBERS[:3])
        records = sb.messages()
    assert len(records) == 3
    for record in records:
        # Acceptance comes after the simulated latency (30 ms ± 20 %).
        assert record["time"] - record["arrived_at"] >= 0.024


def test_a_webhook_nobody_acknowledges_is_logged_without_an_ack() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/webhooks"  # bound, never listening
        with run_sandbox(config(url, webhook_retries=1, reply_rate=0.0)) as sb:
            wamids = send_all(sb, NUMBERS[:1])
            wait_for(lambda: bool(sb.webhooks()), "the dropped webhook in the log")
            log = sb.webhooks(kind="status")
            stats = sb.stats()
    assert log and {e["id"] for e in log} == set(wamids.values())
    assert all(e["acked_at"] is None and e["attempts"] == 2 for e in log)
    assert stats["webhook_failures"] >= 1
    assert json.dumps(log)  # plain JSON values only
