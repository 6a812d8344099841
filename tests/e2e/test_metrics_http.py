"""GET /metrics through the real server: counters from every process, queues, database gauges."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from starlette.applications import Starlette

from bot.http.app import create_app
from broadcasts import service
from broadcasts.db import transaction
from broadcasts.models import utcnow
from broadcasts.recipient_status import apply_delivery_status, mark_responded
from jobs.queues import SEND, queue
from jobs.runtime import Runtime
from jobs.sender import run_lane
from jobs.settings import Settings
from jobs.telemetry import Meter, meter_for
from tests.conftest import METRICS_DB, REDIS_BASE_URL, redis_db_for
from tests.factories import OPERATOR, add_recipients, make_broadcast


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


@pytest.fixture
def quiet_redis_url() -> Iterator[str]:
    """A Redis database no other test process uses (workers elsewhere drain the shared ones)."""
    url = f"{REDIS_BASE_URL}/{redis_db_for(METRICS_DB)}"
    Redis.from_url(url).flushdb()
    yield url
    Redis.from_url(url).flushdb()


def test_metrics_show_counters_queues_and_broadcasts(db_url: str, quiet_redis_url: str) -> None:
    # Other test runs may still share this Redis: labels of our own are exact, shared ones at least.
    redis_url = quiet_redis_url
    number = f"tm-{uuid.uuid4().hex[:8]}"
    runtime = Runtime(
        Settings(
            _env_file=None, database_url=db_url, redis_url=redis_url, whatsapp_app_secret="tm-app"
        )
    )
    with transaction(runtime.sessions) as session:
        sending = make_broadcast(session, "Sending")
        add_recipients(session, sending, ["+447400123456", "+447400123457"])
        make_broadcast(session, "Draft")
    worker = Meter(Redis.from_url(redis_url), background=False)  # another process's tally
    worker.sent(number, 7)
    worker.count("messages_failed", {"code": "990026"}, 2)
    worker.count("slack_api_errors", {"method": "tm.metrics", "error": "invalid_auth"})
    assert worker.flush()
    queue(SEND, runtime.redis).enqueue(run_lane, "b-1", 0)
    body = json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": number, "changes": []}]}
    ).encode()
    signature = "sha256=" + hmac.new(b"tm-app", body, hashlib.sha256).hexdigest()

    with serve(create_app(runtime)) as base:
        forged = httpx.post(f"{base}/webhooks/whatsapp", content=b"{}")
        signed = [
            httpx.post(
                f"{base}/webhooks/whatsapp",
                content=body,
                headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
            )
            for _ in range(2)
        ]
        meter_for(redis_url).flush()  # what the web process's background thread does each second
        response = httpx.get(f"{base}/metrics")

    assert forged.status_code == 401
    assert [r.status_code for r in signed] == [200, 200]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    m = _samples(response.text)
    assert m[("broadcast_messages_sent_total", (("phone_number_id", number),))] == 7
    assert m[("broadcast_messages_failed_total", (("code", "990026"),))] == 2
    errors = (("error", "invalid_auth"), ("method", "tm.metrics"))
    assert m[("broadcast_slack_api_errors_total", errors)] == 1
    rejected = (("result", "rejected"), ("source", "meta"), ("status", "401"))
    accepted = (("result", "accepted"), ("source", "meta"), ("status", "200"))
    assert m[("broadcast_webhook_events_total", rejected)] >= 1
    assert m[("broadcast_webhook_events_total", accepted)] >= 2
    assert m[("broadcast_webhook_duplicates_total", ())] >= 1
    assert m[("broadcast_queue_depth", (("queue", "send"),))] == 1
    assert ("broadcast_queue_depth", (("queue", "maintenance"),)) in m
    assert m[("broadcast_broadcasts", (("status", "draft"),))] == 2
    assert m[("broadcast_broadcasts", (("status", "sending"),))] == 0
    assert m[("broadcast_webhook_inbox_backlog", ())] == 1  # stored once, not yet processed
    assert ("broadcast_send_rate", (("phone_number_id", number),)) in m
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


def test_metrics_show_each_active_broadcast_with_the_seed_rates(
    db_url: str, quiet_redis_url: str
) -> None:
    runtime = Runtime(Settings(_env_file=None, database_url=db_url, redis_url=quiet_redis_url))
    at = utcnow()
    with transaction(runtime.sessions) as session:
        broadcast = make_broadcast(session, "Rates")
        recipients = add_recipients(session, broadcast, [f"+44740012345{i}" for i in range(4)])
        service.start_broadcast(session, broadcast.id, by=OPERATOR)
        for r in recipients[:2]:
            apply_delivery_status(session, r, "delivered", at=at)
        mark_responded(session, recipients[0], at=at)
        mark_responded(session, recipients[1], at=at, opt_out=True)
        broadcast_id = broadcast.id
        make_broadcast(session, "Still a draft")
    with serve(create_app(runtime)) as base:
        response = httpx.get(f"{base}/metrics")
    runtime.close()
    m = _samples(response.text)
    labels = (("broadcast_id", broadcast_id), ("broadcast_name", "Rates"))

    def rate(key: str) -> float:
        return m[("broadcast_rate", tuple(sorted((*labels, ("rate", key)))))]

    def recipients_of(metric: str) -> float:
        return m[("broadcast_recipients", tuple(sorted((*labels, ("metric", metric)))))]

    assert (recipients_of("total"), recipients_of("responded"), recipients_of("opted_out")) == (
        4,
        1,
        1,
    )
    assert rate("response_rate") == 0.25  # responded ÷ total recipients
    assert (rate("delivery_rate"), rate("reply_rate_of_delivered")) == (1.0, 0.5)
    assert not any(
        dict(labels_).get("broadcast_name") == "Still a draft"
        for name, labels_ in m
        if name == "broadcast_rate"
    )
