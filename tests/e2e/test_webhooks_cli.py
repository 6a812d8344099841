"""`broadcast-bot webhooks …` and `agents deliveries` as an operator runs them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session, sessionmaker

from bot.cli.main import cli
from broadcasts.db import transaction
from tests.factories import make_config


class FakePlatform:
    """Kapso's Platform API on 127.0.0.1: records webhook registrations."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.status = 201
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw)
                platform.requests.append((self.path, dict(self.headers), body))
                if platform.status >= 400:
                    answer: dict[str, Any] = {"error": "Invalid API key"}
                else:
                    hook = body["whatsapp_webhook"]
                    answer = {
                        "data": {
                            "id": "wh-123",
                            "url": hook["url"],
                            "kind": hook["kind"],
                            "events": hook.get("events", []),
                            "active": True,
                        }
                    }
                data = json.dumps(answer).encode()
                self.send_response(platform.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/platform/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def invoke(db_url: str, redis_url: str, *args: str, **env: str) -> Result:
    base = {"DATABASE_URL": db_url, "REDIS_URL": redis_url}
    return CliRunner().invoke(cli, list(args), env={**base, **env})


def test_register_kapso_posts_url_events_and_secret(
    db_url: str, redis_url: str, sessions: sessionmaker[Session], platform: FakePlatform
) -> None:
    with transaction(sessions) as s:
        make_config(s, "main", phone_number_id="555000111")
    env = {
        "KAPSO_API_KEY": "project-key",
        "KAPSO_WEBHOOK_SECRET": "whsec",
        "KAPSO_PLATFORM_URL": platform.url,
    }
    result = invoke(
        db_url,
        redis_url,
        "webhooks",
        "register-kapso",
        "--config",
        "main",
        "--url",
        "https://bot.example.com/webhooks/kapso",
        **env,
    )
    assert result.exit_code == 0, result.output
    assert "wh-123" in result.stdout
    ((path, headers, body),) = platform.requests
    assert path == "/platform/v1/whatsapp/phone_numbers/555000111/webhooks"
    assert headers["X-API-Key"] == "project-key"
    hook = body["whatsapp_webhook"]
    assert hook["url"] == "https://bot.example.com/webhooks/kapso"
    assert hook["secret_key"] == "whsec"
    assert "whatsapp.message.received" in hook["events"]
    assert "whatsapp.message.failed" in hook["events"]

    platform.status = 401
    refused = invoke(
        db_url,
        redis_url,
        "webhooks",
        "register-kapso",
        "--config",
        "main",
        "--url",
        "https://bot.example.com/webhooks/kapso",
        **env,
    )
    assert refused.exit_code == 1
    assert "HTTP 401" in refused.stderr and "KAPSO_API_KEY" in refused.stderr
    assert "whsec" not in refused.stderr and "project-key" not in refused.stderr


def test_register_kapso_without_a_key_says_which_setting(
    db_url: str, redis_url: str, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        make_config(s, "main")
    result = invoke(
        db_url,
        redis_url,
        "webhooks",
        "register-kapso",
        "--config",
        "main",
        "--url",
        "https://x.example/webhooks/kapso",
        KAPSO_API_KEY="",
        KAPSO_WEBHOOK_SECRET="s",
    )
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: KAPSO_API_KEY is not set")


def test_status_replay_and_deliveries_on_an_empty_inbox(db_url: str, redis_url: str) -> None:
    status = invoke(db_url, redis_url, "webhooks", "status", "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["waiting"] == 0
    replay = invoke(db_url, redis_url, "webhooks", "replay")
    assert replay.exit_code == 0 and "Queued 0" in replay.stdout
    deliveries = invoke(db_url, redis_url, "agents", "deliveries", "--status", "failed")
    assert (
        deliveries.exit_code == 0 and "No agent deliveries in status failed." in deliveries.stdout
    )
