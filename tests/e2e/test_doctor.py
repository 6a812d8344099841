"""`broadcast-bot doctor` explains every failure of a misconfigured environment, with its fix."""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from redis import Redis
from rq import Worker

from bot.cli.main import cli
from broadcasts.configs import get_config
from broadcasts.db import make_engine, make_session_factory, transaction
from kapso.sandbox.runner import Sandbox, run_sandbox
from tests.conftest import DOCTOR_DB, REDIS_BASE_URL, redis_db_for
from tests.factories import make_config
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack

VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "KAPSO_API_KEY",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "KAPSO_WEBHOOK_SECRET",
    "PORT",
    "LOG_FORMAT",
    "ACME_META_TOKEN",
    "SANDBOX_KEY",
)


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's gets read


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with run_sandbox() as box:
        yield box


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def doctor(env: dict[str, str], *args: str) -> tuple[Result, dict[str, Any]]:
    full: dict[str, str | None] = dict.fromkeys(VARIABLES)
    full.update(env)
    text = CliRunner().invoke(cli, ["doctor", *args], env=full)
    as_json = CliRunner().invoke(cli, ["doctor", "--json", *args], env=full)
    assert as_json.exit_code == text.exit_code, as_json.output
    return text, {c["name"]: c for c in json.loads(as_json.stdout)["checks"]}


def test_every_failure_of_a_broken_environment_is_explained(slack: FakeSlack) -> None:
    result, checks = doctor(
        {
            "PORT": "0",
            "DATABASE_URL": f"postgresql+psycopg://bot:s3cret@127.0.0.1:{_closed_port()}/prod",
            "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0",
            "SLACK_BOT_TOKEN": "xoxb-revoked-or-mistyped",
            "SLACK_API_URL": slack.api_url,
        }
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "s3cret" not in result.output

    assert checks["settings: PORT"]["status"] == "FAIL"
    assert "PORT" in checks["settings: PORT"]["fix"]
    database = checks["database"]
    assert database["status"] == "FAIL"
    assert "cannot connect to postgresql+psycopg://***@127.0.0.1" in database["detail"]
    assert "DATABASE_URL" in database["fix"]
    assert checks["redis"]["status"] == "FAIL"
    assert "REDIS_URL" in checks["redis"]["fix"]
    token = checks["slack token"]
    assert token["status"] == "FAIL"
    assert token["detail"] == "auth.test failed: invalid_auth"
    assert "Bot User OAuth Token" in token["fix"]
    signing = checks["slack signing secret"]
    assert signing["status"] == "FAIL"
    assert "SLACK_SIGNING_SECRET" in signing["fix"]
    assert checks["whatsapp"]["status"] == "WARN"  # cannot look at configurations
    # Every FAIL line of the text output is followed by its fix.
    lines = result.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("FAIL"):
            assert lines[i + 1].strip().startswith("fix: "), line
    assert lines[-1].startswith("5 failed")


def test_an_unmigrated_database_says_to_migrate(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    _, checks = doctor({"DATABASE_URL": f"sqlite:///{path}", "REDIS_URL": redis_url})
    assert checks["database"]["status"] == "PASS"
    assert checks["migrations"]["status"] == "FAIL"
    assert checks["migrations"]["fix"] == "Run `broadcast-bot migrate`."
    _, checks = doctor({"DATABASE_URL": f"sqlite:///{tmp_path / 'missing.db'}"})
    assert checks["database"]["status"] == "FAIL"
    assert "broadcast-bot migrate" in checks["database"]["fix"]


def test_whatsapp_configurations_with_a_missing_or_rejected_credential(
    db_url: str, redis_url: str, sandbox: Sandbox, slack: FakeSlack
) -> None:
    with transaction(make_session_factory(make_engine(db_url))) as session:
        make_config(
            session,
            "acme",
            provider="meta",
            api_base_url=sandbox.base_url,
            credential_env="ACME_META_TOKEN",
        )
        make_config(session, "kapso-main", provider="kapso", phone_number_id="200")
    result, checks = doctor(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "ACME_META_TOKEN": "EAA-expired-token",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "x" * 32,
            "SLACK_API_URL": slack.api_url,
        }
    )
    assert result.exit_code == 1
    rejected = checks["whatsapp 'acme' templates"]
    assert rejected["status"] == "FAIL"
    assert rejected["detail"].startswith("listing templates failed: error 190")
    assert "ACME_META_TOKEN" in rejected["fix"]
    missing = checks["whatsapp 'kapso-main' credential"]
    assert missing["status"] == "FAIL"
    assert missing["detail"].startswith("KAPSO_API_KEY is not set")
    assert missing["fix"].startswith("Set KAPSO_API_KEY")
    # meta needs the app secret and the verify token; kapso its webhook secret
    for variable in ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "KAPSO_WEBHOOK_SECRET"):
        assert checks[variable]["status"] == "FAIL"
        assert checks[variable]["fix"].startswith(f"Set {variable}")
    assert checks["slack token"]["status"] == "PASS"
    assert "EAA-expired-token" not in result.output


def test_a_healthy_environment_passes_everything(
    db_url: str, sandbox: Sandbox, slack: FakeSlack
) -> None:
    # A Redis database other test processes leave alone (they flush theirs between tests).
    redis_url = f"{REDIS_BASE_URL}/{redis_db_for(DOCTOR_DB)}"
    with transaction(make_session_factory(make_engine(db_url))) as session:
        make_config(session, "sandbox", api_base_url=sandbox.base_url, credential_env="SANDBOX_KEY")
    worker = Worker(["send"], connection=Redis.from_url(redis_url))
    worker.register_birth()  # type: ignore[no-untyped-call]
    try:
        result, checks = doctor(
            {
                "DATABASE_URL": db_url,
                "REDIS_URL": redis_url,
                "SANDBOX_KEY": "sandbox-key",
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": "x" * 32,
                "SLACK_API_URL": slack.api_url,
                "WHATSAPP_APP_SECRET": "sandbox-app-secret",
            },
            "--require",
            "slack",
            "--require",
            "workers",
        )
    finally:
        worker.register_death()  # type: ignore[no-untyped-call]
    assert result.exit_code == 0, result.output
    assert {c["status"] for c in checks.values()} == {"PASS"}, result.output
    assert checks["whatsapp 'sandbox' templates"]["detail"].endswith("approved")
    # doctor stores what it read: the level (the rate follows it) and the messaging limit; the
    # first run (text) moved the rate from the seed's 50/s, the second (--json) found it so.
    assert "rate 50/s → 80/s" in result.stdout
    limits = checks["whatsapp 'sandbox' limits"]["detail"]
    assert limits == "messaging limit TIER_10K, throughput level STANDARD"
    assert checks["whatsapp 'sandbox' throughput"]["detail"].endswith("configured 80/s")
    with transaction(make_session_factory(make_engine(db_url))) as session:
        config = get_config(session, "sandbox")
        assert (config.throughput_mps, config.messaging_limit) == (80, "TIER_10K")
    assert checks["slack token"]["detail"].startswith("auth.test ok: @broadcasts in Fake")
    assert result.stdout.splitlines()[-1].startswith("All good")
