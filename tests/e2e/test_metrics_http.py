"""GET /metrics through the real server: counters from every process, queues, database gauges."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from starlette.applications import Starlette

from bot.server import create_app
from broadcasts.db import transaction
from broadcasts.settings import Settings
from jobs.queues import SEND, queue
from jobs.runtime import Runtime
from jobs.telemetry import Meter, meter_for
from tests.factories import add_recipients, make_broadcast


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """The app on a real uvicorn server on 127.0.0.1, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve([sock])), daemon=True)
    thread.start()
    for _ in range(2000):
        if server.started or not thread.is_alive():
            break
        time.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_show_counters_queues_and_broadcasts(db_url: str, redis_url: str) -> None:
    runtime = Runtime(Settings(_env_file=None, database_url=db_url, redis_url=redis_url))
    with transaction(runtime.sessions) as session:
        sending = make_broadcast(session, "Sending")
        add_recipients(session, sending, ["+447400123456", "+447400123457"])
        make_broadcast(session, "Draft")
    worker = Meter(Redis.from_url(redis_url), background=False)  # another process's tally
    worker.sent("100200300", 7)
    worker.count("messages_failed", {"code": "131026"}, 2)
    worker.count("slack_api_errors", {"method": "chat.update", "error": "invalid_auth"})
    assert worker.flush()
    queue(SEND, runtime.redis).enqueue("jobs.sender.run_lane", "b-1", 0)

    with serve(create_app(runtime)) as base:
        rejected = httpx.post(f"{base}/webhooks/whatsapp", content=b"{}")
        meter_for(redis_url).flush()  # what the web process's background thread does each second
        response = httpx.get(f"{base}/metrics")

    assert rejected.status_code >= 400
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    m = _samples(response.text)
    assert m[("broadcast_messages_sent_total", (("phone_number_id", "100200300"),))] == 7
    assert m[("broadcast_messages_failed_total", (("code", "131026"),))] == 2
    assert (
        m[
            (
                "broadcast_slack_api_errors_total",
                (("error", "invalid_auth"), ("method", "chat.update")),
            )
        ]
        == 1
    )
    webhook = (
        "broadcast_webhook_events_total",
        (("result", "rejected"), ("source", "meta"), ("status", str(rejected.status_code))),
    )
    assert m[webhook] == 1
    assert m[("broadcast_queue_depth", (("queue", "send"),))] == 1
    assert m[("broadcast_queue_depth", (("queue", "webhooks"),))] == 0
    assert m[("broadcast_broadcasts", (("status", "draft"),))] == 2
    assert m[("broadcast_broadcasts", (("status", "sending"),))] == 0
    assert ("broadcast_send_rate", (("phone_number_id", "100200300"),)) in m
    assert m[("broadcast_up", (("component", "redis"),))] == 1
    assert m[("broadcast_up", (("component", "database"),))] == 1
    for name in ("broadcast_limiter_wait_seconds", "broadcast_messages_throttled"):
        assert f"# TYPE {name}_total counter" in response.text


def test_metrics_say_which_component_is_down_and_can_require_a_token(db_url: str) -> None:
    settings = Settings(
        _env_file=None,
        database_url=db_url,
        redis_url=f"redis://127.0.0.1:{_closed_port()}/0",
        metrics_token="scrape-me-please",
    )
    with serve(create_app(Runtime(settings))) as base:
        anonymous = httpx.get(f"{base}/metrics")
        wrong = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"})
        scraped = httpx.get(
            f"{base}/metrics", headers={"Authorization": "Bearer scrape-me-please"}, timeout=30
        )
    assert anonymous.status_code == wrong.status_code == 401
    assert scraped.status_code == 200
    m = _samples(scraped.text)
    assert m[("broadcast_up", (("component", "redis"),))] == 0
    assert m[("broadcast_up", (("component", "database"),))] == 1
    assert m[("broadcast_broadcasts", (("status", "draft"),))] == 0
