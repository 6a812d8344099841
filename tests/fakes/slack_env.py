"""Our HTTP app served by uvicorn on a free port, wired to the fake Slack API, for tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from redis import Redis
from rq import SimpleWorker

from bot.http.app import create_app
from jobs.queues import ALL, queue
from jobs.runtime import Runtime, install
from jobs.settings import Settings
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack, SlackSender


@dataclass
class SlackEnv:
    slack: FakeSlack
    runtime: Runtime
    sender: SlackSender
    base_url: str

    def work(self) -> None:
        """Run every queued job (and the jobs they queue) in this process, then return."""
        redis: Redis[bytes] = self.runtime.redis
        worker = SimpleWorker([queue(name, redis) for name in ALL], connection=redis)
        worker.work(burst=True)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on 127.0.0.1; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="auto"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def slack_env(db_url: str, redis_url: str, **settings: Any) -> Iterator[SlackEnv]:
    # Flows read the card right after acting: no card budget unless a test asks for one
    # (tests/integration/test_slack_notifications.py tests the budget itself).
    settings.setdefault("slack_card_update_seconds", 0.001)
    settings.setdefault("slack_updates_per_minute", 1_000_000)
    with FakeSlack() as slack:
        runtime = Runtime(
            Settings(
                database_url=db_url,
                redis_url=redis_url,
                slack_bot_token=BOT_TOKEN,
                slack_signing_secret=SIGNING_SECRET,
                slack_api_url=slack.api_url,
                **settings,
            )
        )
        install(runtime)
        try:
            with serve(create_app(runtime)) as base:
                sender = SlackSender(url=f"{base}/slack/events", response_url=slack.response_url)
                yield SlackEnv(slack=slack, runtime=runtime, sender=sender, base_url=base)
        finally:
            runtime.close()
