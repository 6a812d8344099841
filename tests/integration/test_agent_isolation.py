"""One slow agent never delays another agent's replies: deliveries run per agent, as in a worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from broadcasts.db import transaction
from broadcasts.enums import DeliveryStatus
from broadcasts.models import Agent, AgentDelivery
from jobs import agents, offload
from jobs.runtime import Runtime, install
from tests.factories import make_config
from tests.webhook_support import (
    AGENT_SECRET,
    AGENT_SECRET_ENV,
    drain,
    fake_agent,
    meta_change,
    meta_headers,
    post,
    private_redis_url,
    running_app,
    settings_for,
)

redis_url = pytest.fixture(private_redis_url)
SECOND_NUMBER_ID = "100200399"


@contextmanager
def stuck_agent(release: threading.Event) -> Iterator[dict[str, Any]]:
    """An agent endpoint that answers nothing until `release` is set."""
    seen: dict[str, Any] = {"calls": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen["calls"] += 1
            release.wait(60)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    seen["url"] = f"http://127.0.0.1:{server.server_address[1]}/agent"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield seen
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def message_to(phone_number_id: str, wa_id: str, wamid: str) -> bytes:
    return meta_change(
        "messages",
        {
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": wamid,
                    "timestamp": str(int(time.time())),
                    "type": "text",
                    "text": {"body": "hello"},
                }
            ],
        },
    )


def send_in(base: str, raw: bytes) -> None:
    assert post(base, "/webhooks/whatsapp", raw, meta_headers(raw)).status_code == 200


def delivered(runtime: Runtime, agent_name: str) -> int:
    with transaction(runtime.sessions) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AgentDelivery)
                .join(Agent, Agent.id == AgentDelivery.agent_id)
                .where(Agent.name == agent_name, AgentDelivery.status == DeliveryStatus.DELIVERED)
            )
            or 0
        )


def test_a_slow_agent_delays_only_its_own_messages(
    db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AGENT_SECRET_ENV, AGENT_SECRET)
    settings = settings_for(db_url, redis_url, agent_timeout_seconds=60)
    runtime = Runtime(settings)
    install(runtime)
    release = threading.Event()
    deliveries = offload.Offload(agents.OFFLOAD, per_key=agents.PER_AGENT_IN_FLIGHT)
    offload.install(deliveries)
    try:
        with stuck_agent(release) as slow, fake_agent() as fast:
            with transaction(runtime.sessions) as session:
                make_config(session, "main")
                make_config(session, "second", phone_number_id=SECOND_NUMBER_ID)
                for name, url in (("main-agent", slow["url"]), ("second-agent", fast.url)):
                    agent = session.scalar(select(Agent).where(Agent.name == name))
                    assert agent is not None
                    agent.url, agent.secret_env = url, AGENT_SECRET_ENV
            with running_app(settings) as base:
                for i in range(6):  # six replies for the stuck agent first
                    raw = message_to("100200300", f"1555111000{i}", f"wamid.SLOW{i}")
                    assert (
                        post(base, "/webhooks/whatsapp", raw, meta_headers(raw)).status_code == 200
                    )
                raw = message_to(SECOND_NUMBER_ID, "15552220000", "wamid.FAST")
                send_in(base, raw)
            drain(runtime)  # webhooks processed; each delivery job hands over to its agent
            deadline = time.monotonic() + 60
            while not fast.calls and time.monotonic() < deadline:
                time.sleep(0.05)
            # The healthy agent got its reply while the stuck one holds every one of its own.
            assert len(fast.calls) == 1
            assert delivered(runtime, "main-agent") == 0
            assert slow["calls"] <= agents.PER_AGENT_IN_FLIGHT  # the rest wait their turn
            release.set()
            assert deliveries.drain(60)
            assert delivered(runtime, "main-agent") == 6
            assert delivered(runtime, "second-agent") == 1
    finally:
        release.set()
        deliveries.drain(30)
        offload.uninstall(agents.OFFLOAD)
        runtime.close()
