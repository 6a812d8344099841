"""The maintenance loop's webhook requeue: a backlog is queued once per threshold, not every
pass, and a body that keeps failing is parked with its error and shown by `webhooks status`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from bot.cli.main import cli
from broadcasts.models import InboxEvent
from jobs import inbox
from jobs.queues import WEBHOOKS, queue
from jobs.runtime import Runtime, install
from tests.webhook_support import private_redis_url, settings_for

redis_url = pytest.fixture(private_redis_url)


@pytest.fixture
def runtime(db_url: str, redis_url: str) -> Iterator[Runtime]:
    # Every stored body counts as stale at once, as after a long outage.
    rt = Runtime(settings_for(db_url, redis_url, inbox_requeue_after_seconds=0.001))
    install(rt)
    yield rt
    rt.close()


def store(runtime: Runtime, n: int) -> list[int]:
    events = [
        inbox.NewEvent("meta", inbox.dedup_key("meta", f"body {i}".encode()), None, "{}")
        for i in range(n)
    ]
    with runtime.engine.begin() as conn:
        return [event_id for event_id, _ in inbox.insert_events(conn, events)]


def queued_ids(runtime: Runtime) -> list[int]:
    q = queue(WEBHOOKS, runtime.redis)
    return [i for job in q.get_jobs() for i in job.args[0]]


def test_a_stale_backlog_is_queued_once_per_threshold_not_on_every_pass(runtime: Runtime) -> None:
    ids = store(runtime, 390)
    assert inbox.requeue_stale(runtime) == 390
    for _ in range(20):  # the maintenance loop passes every second
        assert inbox.requeue_stale(runtime) == 0
    assert sorted(queued_ids(runtime)) == sorted(ids)  # each body once


def test_a_replay_queues_everything_again_and_gives_parked_bodies_their_attempts_back(
    runtime: Runtime,
) -> None:
    [parked, _waiting] = store(runtime, 2)
    with runtime.engine.begin() as conn:
        conn.execute(
            update(InboxEvent)
            .where(InboxEvent.id == parked)
            .values(attempts=runtime.settings.inbox_max_attempts, error="ValueError: poison")
        )
    assert inbox.requeue_stale(runtime) == 1  # the parked one is left alone
    assert inbox.requeue_stale(runtime, older_than=0, replay=True) == 2


def test_webhooks_status_shows_parked_bodies_with_their_error(
    runtime: Runtime, db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    [parked] = store(runtime, 1)
    with runtime.engine.begin() as conn:
        conn.execute(
            update(InboxEvent)
            .where(InboxEvent.id == parked)
            .values(
                attempts=runtime.settings.inbox_max_attempts,
                error="OverflowError: date value out of range",
                event_type="messages",
            )
        )
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    result = CliRunner().invoke(cli, ["webhooks", "status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["parked"] == 1
    assert data["parked_bodies"] == [
        {"id": parked, "event_type": "messages", "error": "OverflowError: date value out of range"}
    ]
    text = CliRunner().invoke(cli, ["webhooks", "status"]).output
    assert f"parked #{parked} (messages): OverflowError: date value out of range" in text
