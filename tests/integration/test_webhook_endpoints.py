"""The webhook endpoints over real HTTP: signatures, durable inbox, statuses processed once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from broadcasts import service
from broadcasts.callback import encode
from broadcasts.enums import BroadcastStatus, RecipientStatus
from broadcasts.metrics import recount, stored_counts
from broadcasts.models import Broadcast, InboxEvent, Recipient, Template
from broadcasts.recipient_status import mark_sent
from jobs import inbox
from jobs.runtime import Runtime
from jobs.settings import Settings
from tests.factories import OPERATOR, add_recipients, make_broadcast
from tests.webhook_support import (
    VERIFY_TOKEN,
    drain,
    kapso_headers,
    meta_change,
    meta_headers,
    meta_statuses,
    post,
    private_redis_url,
    running_app,
    settings_for,
    status,
)

T0 = 1_780_000_000


redis_url = pytest.fixture(private_redis_url)


@pytest.fixture
def settings(db_url: str, redis_url: str) -> Settings:
    return settings_for(db_url, redis_url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def base(settings: Settings) -> Iterator[str]:
    with running_app(settings) as url:
        yield url


def inbox_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(InboxEvent)) or 0)


def sent_broadcast(sessions: sessionmaker[Session], n: int = 3) -> tuple[str, list[int]]:
    """A broadcast whose n recipients WhatsApp accepted (wamid.0 … wamid.n-1)."""
    with sessions() as s, s.begin():
        broadcast = make_broadcast(s)
        recipients = add_recipients(s, broadcast, [f"+1555123456{i}" for i in range(n)])
        for i, r in enumerate(recipients):
            r.status = RecipientStatus.SENDING
            s.flush()
            mark_sent(s, r, wamid=f"wamid.{i}", wa_id=f"1555123456{i}", message_status="accepted")
        return broadcast.id, [r.id for r in recipients]


def assert_counters_match(sessions: sessionmaker[Session], broadcast_id: str) -> None:
    with sessions() as s:
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None
        assert stored_counts(broadcast) == recount(s, broadcast_id)


# --- handshake and refusals --------------------------------------------------------------------


def test_meta_handshake_echoes_the_challenge_only_with_the_token(base: str) -> None:
    import httpx

    ok = httpx.get(
        base + "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"},
    )
    assert (ok.status_code, ok.text) == (200, "42")
    bad = httpx.get(
        base + "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"},
    )
    assert bad.status_code == 403


def test_forged_or_missing_signatures_get_401_and_store_nothing(
    base: str, sessions: sessionmaker[Session]
) -> None:
    raw = meta_statuses(status("wamid.0", "delivered", T0))
    assert post(base, "/webhooks/whatsapp", raw, meta_headers(raw, "wrong")).status_code == 401
    assert post(base, "/webhooks/whatsapp", raw, {}).status_code == 401
    forged = kapso_headers(raw, "whatsapp.message.delivered")
    forged["X-Webhook-Signature"] = "0" * 64
    assert post(base, "/webhooks/kapso", raw, forged).status_code == 401
    tampered = raw.replace(b"delivered", b"read")
    assert post(base, "/webhooks/whatsapp", tampered, meta_headers(raw)).status_code == 401
    assert inbox_count(sessions) == 0


def test_bad_bodies_get_clear_codes_not_500(base: str, sessions: sessionmaker[Session]) -> None:
    for raw, expected in [
        (b'{"object": "whatsapp_business_account", "entry": [', 400),
        (b"\xff\xfe not utf-8", 400),
        (b"[1, 2, 3]", 400),
        (b'{"object": "page", "entry": []}', 422),
        (b'{"hello": "world"}', 422),
        (b'{"pad": "' + b"x" * 70_000 + b'"}', 413),
    ]:
        response = post(base, "/webhooks/whatsapp", raw, meta_headers(raw))
        assert response.status_code == expected, raw[:40]
        assert response.json()["ok"] is False
    assert inbox_count(sessions) == 0


def test_unset_secret_refuses_with_503(db_url: str, redis_url: str) -> None:
    raw = meta_statuses(status("wamid.0", "sent", T0))
    with running_app(settings_for(db_url, redis_url, whatsapp_app_secret=None)) as url:
        assert post(url, "/webhooks/whatsapp", raw, meta_headers(raw)).status_code == 503


# --- statuses ----------------------------------------------------------------------------------


def test_statuses_move_forward_only_and_duplicates_change_nothing(
    base: str, runtime: Runtime, sessions: sessionmaker[Session]
) -> None:
    broadcast_id, ids = sent_broadcast(sessions)
    bodies = [
        meta_statuses(status("wamid.0", "read", T0 + 20)),  # read before delivered
        meta_statuses(status("wamid.0", "delivered", T0 + 10)),
        meta_statuses(status("wamid.1", "delivered", T0 + 10)),
        meta_statuses(
            status(
                "wamid.2",
                "failed",
                T0 + 5,
                errors=[
                    {
                        "code": 131026,
                        "title": "Message undeliverable",
                        "error_data": {"details": "Receiver is incapable"},
                    }
                ],
            )
        ),
        meta_statuses(status("wamid.2", "delivered", T0 + 30)),  # delivered after failed
    ]
    for raw in bodies + bodies[:2]:  # Meta redelivers identical bodies
        assert post(base, "/webhooks/whatsapp", raw, meta_headers(raw)).status_code == 200
    assert inbox_count(sessions) == len(bodies)
    drain(runtime)
    drain(runtime)  # a second pass finds nothing left to do
    with sessions() as s:
        r0, r1, r2 = (s.get(Recipient, i) for i in ids)
        assert r0 is not None and r1 is not None and r2 is not None
        assert r0.status == RecipientStatus.READ
        assert r0.delivered_at == datetime.fromtimestamp(T0 + 20, UTC)  # read implies delivered
        assert r1.status == RecipientStatus.DELIVERED
        assert r2.status == RecipientStatus.FAILED
        assert (r2.error_code, r2.error_title, r2.error_detail) == (
            131026,
            "Message undeliverable",
            "Receiver is incapable",
        )
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None
        # A delivery reported after a failure is recorded, but the recipient stays failed.
        assert (broadcast.delivered_count, broadcast.read_count, broadcast.failed_count) == (
            3,
            1,
            1,
        )
        unprocessed = s.scalar(select(func.count()).where(InboxEvent.processed_at.is_(None)))
        assert unprocessed == 0
    assert_counters_match(sessions, broadcast_id)


def test_status_for_a_lost_send_response_is_matched_by_callback_data(
    base: str, runtime: Runtime, sessions: sessionmaker[Session]
) -> None:
    with sessions() as s, s.begin():
        broadcast = make_broadcast(s)
        (recipient,) = add_recipients(s, broadcast, ["+15551230000"])
        broadcast.status = BroadcastStatus.SENDING
        recipient.status = RecipientStatus.SENDING  # claimed; the API's answer never came
        recipient.attempts = 1
        broadcast_id, recipient_id = broadcast.id, recipient.id
    callback = encode(broadcast_id, recipient_id)
    raw = meta_statuses(
        status("wamid.LOST", "sent", T0, biz_opaque_callback_data=callback),
        status("wamid.LOST", "delivered", T0 + 3, biz_opaque_callback_data=callback),
        status("wamid.TEST", "sent", T0, biz_opaque_callback_data=encode(broadcast_id, None)),
    )
    assert post(base, "/webhooks/whatsapp", raw, meta_headers(raw)).status_code == 200
    drain(runtime)
    with sessions() as s:
        recipient = s.get(Recipient, recipient_id)
        assert recipient is not None
        assert (recipient.wamid, recipient.status) == ("wamid.LOST", RecipientStatus.DELIVERED)
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None and broadcast.sent_count == 1
    assert_counters_match(sessions, broadcast_id)


def test_statuses_of_messages_we_did_not_send_are_stored_and_ignored(
    base: str, runtime: Runtime, sessions: sessionmaker[Session]
) -> None:
    raw = meta_statuses(status("wamid.SOMEONE-ELSE", "delivered", T0))
    assert post(base, "/webhooks/whatsapp", raw, meta_headers(raw)).status_code == 200
    unknown = meta_change("account_alerts", {"alert": "x"})
    assert post(base, "/webhooks/whatsapp", unknown, meta_headers(unknown)).status_code == 200
    drain(runtime)
    with sessions() as s:
        rows = list(s.scalars(select(InboxEvent)))
        assert len(rows) == 2
        assert all(r.processed_at is not None and r.error is None for r in rows)


def test_kapso_batched_statuses_with_idempotency_keys(
    base: str, runtime: Runtime, sessions: sessionmaker[Session]
) -> None:
    broadcast_id, _ = sent_broadcast(sessions)

    def payload(i: int) -> dict[str, object]:
        return {
            "message": {
                "id": f"wamid.{i}",
                "timestamp": str(T0 + 9),
                "type": "template",
                "kapso": {
                    "direction": "outbound",
                    "status": "delivered",
                    "statuses": [
                        {"id": f"wamid.{i}", "status": "sent", "timestamp": str(T0)},
                        {"id": f"wamid.{i}", "status": "delivered", "timestamp": str(T0 + 9)},
                    ],
                },
            },
            "conversation": {
                "id": "c1",
                "phone_number": f"+1555123456{i}",
                "phone_number_id": "100200300",
            },
            "is_new_conversation": False,
            "phone_number_id": "100200300",
        }

    raw = json.dumps({"batch": True, "data": [payload(i) for i in range(3)]}).encode()
    headers = kapso_headers(raw, "whatsapp.message.delivered", key="evt-1")
    headers["X-Webhook-Batch"] = "true"
    assert post(base, "/webhooks/kapso", raw, headers).status_code == 200
    assert post(base, "/webhooks/kapso", raw, headers).status_code == 200  # Kapso's retry
    assert inbox_count(sessions) == 1
    drain(runtime)
    with sessions() as s:
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None and broadcast.delivered_count == 3
    assert_counters_match(sessions, broadcast_id)


def test_redis_lost_between_ack_and_processing_loses_nothing(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], redis_url: str
) -> None:
    broadcast_id, _ = sent_broadcast(sessions, n=2)
    for i in range(2):
        raw = meta_statuses(status(f"wamid.{i}", "delivered", T0 + i))
        assert post(base, "/webhooks/whatsapp", raw, meta_headers(raw)).status_code == 200
    Redis.from_url(redis_url).flushdb()  # a Redis restart without persistence
    assert inbox.requeue_stale(runtime, older_than=0) == 2
    assert inbox.requeue_stale(runtime, older_than=0) == 2  # queued twice: still processed once
    drain(runtime)
    with sessions() as s:
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None and broadcast.delivered_count == 2
        assert all(r.attempts == 1 for r in s.scalars(select(InboxEvent)))
    assert_counters_match(sessions, broadcast_id)


# --- template status ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [("PAUSED", BroadcastStatus.PAUSED), ("DISABLED", BroadcastStatus.FAILED)],
)
def test_paused_or_disabled_template_stops_its_sending_broadcast_with_the_reason(
    base: str,
    runtime: Runtime,
    sessions: sessionmaker[Session],
    event: str,
    expected: BroadcastStatus,
) -> None:
    with sessions() as s, s.begin():
        broadcast = make_broadcast(s)
        add_recipients(s, broadcast, ["+15551230001"])
        service.start_broadcast(s, broadcast.id, by=OPERATOR)
        broadcast_id = broadcast.id
    raw = meta_change(
        "message_template_status_update",
        {
            "event": event,
            "message_template_id": 1234,
            "message_template_name": "holiday_promotion",
            "message_template_language": "en_US",
            "reason": "LOW_QUALITY",
        },
    )
    assert post(base, "/webhooks/whatsapp", raw, meta_headers(raw)).status_code == 200
    drain(runtime, "webhooks")
    with sessions() as s:
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None
        assert broadcast.status == expected
        assert broadcast.status_reason is not None and "LOW_QUALITY" in broadcast.status_reason
        template = s.get(Template, broadcast.template_id)
        assert template is not None and template.status == event
