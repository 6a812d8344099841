"""For webhook tests: our ASGI app on a real port, a fake agent, signed Meta/Kapso bodies."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import uvicorn
from redis import Redis
from rq import Queue, SimpleWorker

from bot.http.app import create_app
from jobs import inbox
from jobs.queues import AGENTS, WEBHOOKS
from jobs.runtime import Runtime, install
from jobs.settings import Settings
from kapso.webhooks import sign
from tests.conftest import REDIS_BASE_URL, WEBHOOKS_DB, redis_db_for

APP_SECRET = "meta-app-secret"
KAPSO_SECRET = "kapso-webhook-secret"
VERIFY_TOKEN = "verify-me"
AGENT_SECRET_ENV = "TEST_AGENT_SECRET"
AGENT_SECRET = "agent-signing-secret"
PHONE_NUMBER_ID = "100200300"
WABA_ID = "900800700"


def private_redis_url() -> Iterator[str]:
    """A Redis database only these tests use (other suites' burst workers would take our jobs)."""
    url = (
        os.environ.get("TEST_WEBHOOK_REDIS_URL") or f"{REDIS_BASE_URL}/{redis_db_for(WEBHOOKS_DB)}"
    )
    client = Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def settings_for(db_url: str, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "redis_url": redis_url,
        "whatsapp_app_secret": APP_SECRET,
        "kapso_webhook_secret": KAPSO_SECRET,
        "whatsapp_verify_token": VERIFY_TOKEN,
        "webhook_max_bytes": 64 * 1024,
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def running_app(settings: Settings) -> Iterator[str]:
    """Our real ASGI app under uvicorn in a background thread; yields its base URL."""
    runtime = Runtime(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(runtime), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(500):
        if server.started:
            started.set()
            break
        threading.Event().wait(0.01)
    assert started.is_set(), "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        runtime.close()


def drain(runtime: Runtime, *queues: str) -> None:
    """Process everything stored: requeue unprocessed inbox rows, then run a burst worker."""
    install(runtime)
    inbox.requeue_stale(runtime, older_than=0)
    redis = Redis.from_url(runtime.settings.redis_url)
    names = queues or (WEBHOOKS, AGENTS)
    worker = SimpleWorker([Queue(n, connection=redis) for n in names], connection=redis)
    worker.work(burst=True)
    redis.close()


# --- bodies ------------------------------------------------------------------------------------


def meta_headers(raw: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": "sha256=" + sign(raw, secret),
        "Content-Type": "application/json",
    }


def kapso_headers(raw: bytes, event: str, key: str | None = None) -> dict[str, str]:
    headers = {
        "X-Webhook-Signature": sign(raw, KAPSO_SECRET),
        "X-Webhook-Event": event,
        "Content-Type": "application/json",
    }
    if key:
        headers["X-Idempotency-Key"] = key
    return headers


def meta_change(field_name: str, value: dict[str, Any]) -> bytes:
    value = {"messaging_product": "whatsapp", **value}
    value.setdefault(
        "metadata", {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID}
    )
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": field_name, "value": value}]}],
    }
    return json.dumps(body).encode()


def meta_statuses(*statuses: dict[str, Any]) -> bytes:
    return meta_change("messages", {"statuses": list(statuses)})


def status(
    wamid: str, state: str, ts: int, wa_id: str = "15551234567", **extra: Any
) -> dict[str, Any]:
    return {"id": wamid, "status": state, "timestamp": str(ts), "recipient_id": wa_id, **extra}


def meta_message(
    wa_id: str, wamid: str, text: str, ts: int, *, context: str | None = None, name: str = "Ana"
) -> bytes:
    message: dict[str, Any] = {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(ts),
        "type": "text",
        "text": {"body": text},
    }
    if context:
        message["context"] = {"from": "15550001111", "id": context}
    return meta_change(
        "messages",
        {"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [message]},
    )


def post(base: str, path: str, raw: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(base + path, content=raw, headers=headers, timeout=10)


# --- a webhook agent ---------------------------------------------------------------------------


@dataclass
class AgentCall:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeAgent:
    """An agent's HTTP endpoint: records each POST and answers the queued status codes."""

    url: str = ""
    calls: list[AgentCall] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)


@contextmanager
def fake_agent() -> Iterator[FakeAgent]:
    agent = FakeAgent()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            agent.calls.append(AgentCall(dict(self.headers), self.rfile.read(length)))
            code = agent.answers.pop(0) if agent.answers else 200
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code < 300 else b"agent is down")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    agent.url = f"http://127.0.0.1:{server.server_address[1]}/agent"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield agent
    finally:
        server.shutdown()
        server.server_close()
