"""Driving a broadcast from the CLI against the sandbox: test send, schedule, start, pause,
resume, cancel, watch and report, as an operator types them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from bot.cli.main import cli
from broadcasts.models import utcnow
from kapso.sandbox.config import SandboxConfig
from tests.engine_support import Env, drain, new_broadcast, sending_env, status_of, work


def run(env: Env, *args: str) -> Result:
    settings = env.runtime.settings
    return CliRunner().invoke(
        cli,
        list(args),
        env={"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url},
    )


def ok(env: Env, *args: str) -> str:
    result = run(env, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(env: Env, *args: str) -> str:
    result = run(env, *args)
    assert result.exit_code == 1, result.output
    return result.stderr.strip()


def phones(n: int) -> list[str]:
    return [f"+1415555{i:04d}" for i in range(n)]


def test_operator_drives_a_broadcast_from_the_cli(
    db_url: str, redis_url: str, tmp_path: Path
) -> None:
    sandbox = SandboxConfig(latency_ms=5, throughput=1000, pair_rate=False)
    with sending_env(db_url, redis_url, sandbox) as env:
        bid = new_broadcast(env, phones(30), batch_size=10, batch_pause_seconds=0.2, rate_mps=50)
        out = ok(env, "broadcasts", "test", bid[:8], "+447400123456", "--param", "1=Ana")
        assert "Test message accepted by WhatsApp (wamid " in out
        assert "not NAME=VALUE" in fails(
            env, "broadcasts", "test", bid, "+447400123456", "--param", "x"
        )

        past = (utcnow() - timedelta(minutes=5)).isoformat()
        assert "is in the past" in fails(env, "broadcasts", "schedule", bid, past)
        assert "has no timezone" in fails(env, "broadcasts", "schedule", bid, "2030-01-01T10:00:00")
        future = (utcnow() + timedelta(hours=1)).isoformat()
        assert "Scheduled" in ok(env, "broadcasts", "schedule", bid, future)
        assert "is a draft again" in ok(env, "broadcasts", "unschedule", bid)

        started = ok(env, "broadcasts", "start", bid)
        assert "Sending" in started
        # The same confirmation as Slack's, printed before sending.
        assert "to 30 recipients: about" in started and "in batches of 10, 0.2 s apart" in started
        assert "Recipients by country: +1 US 30" in started
        assert "Warning: This is a marketing template" in started
        work(env)
        shown = json.loads(ok(env, "broadcasts", "pause", bid, "--reason", "checking", "--json"))
        assert (shown["status"], shown["status_reason"]) == ("paused", "checking")
        drain(env, bid, until=frozenset({"paused"}))
        assert "already paused" in fails(env, "broadcasts", "pause", bid)
        assert "Resumed" in ok(env, "broadcasts", "resume", bid)
        assert drain(env, bid) == "completed"
        watched = ok(env, "broadcasts", "watch", bid, "--interval", "0.1")
        assert "100.0% completed" in watched and "Response rate" in watched
        report = tmp_path / "r.csv"
        assert "Wrote 30 recipients" in ok(env, "broadcasts", "report", bid, "--out", str(report))
        assert report.read_text().splitlines()[0].startswith("phone_number,status,error_code")
        assert "read-only" in fails(env, "broadcasts", "cancel", bid)
        assert len(env.sandbox.messages()) == 31  # 30 recipients + the test send


def test_cancel_from_the_cli_skips_the_rest(db_url: str, redis_url: str) -> None:
    with sending_env(db_url, redis_url) as env:
        bid = new_broadcast(env, phones(20), batch_size=5, batch_pause_seconds=30)
        ok(env, "broadcasts", "start", bid)
        work(env)
        assert "15 recipients skipped" in ok(env, "broadcasts", "cancel", bid)
        assert status_of(env, bid) == "cancelled"
