"""Real platform payloads replayed over HTTP: BSUID senders, every kind of inbound message,
asynchronous failures and forged callback data, through the worker into the database."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from broadcasts.callback import encode
from broadcasts.enums import BroadcastStatus, RecipientStatus
from broadcasts.metrics import recount, stored_counts
from broadcasts.models import Agent, Broadcast, Contact, Message, Recipient
from broadcasts.recipient_status import mark_sent
from jobs.runtime import Runtime, install
from jobs.settings import Settings
from tests.factories import add_recipients, make_broadcast
from tests.webhook_support import (
    AGENT_SECRET,
    AGENT_SECRET_ENV,
    APP_SECRET,
    KAPSO_SECRET,
    FakeAgent,
    drain,
    fake_agent,
    meta_change,
    meta_headers,
    meta_statuses,
    post,
    private_redis_url,
    running_app,
    settings_for,
    status,
)

SENT_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
T = int(SENT_AT.timestamp())
BSUID = "US.13491208655302741918"
PHONE = "15551110000"

redis_url = pytest.fixture(private_redis_url)


@pytest.fixture
def settings(db_url: str, redis_url: str) -> Settings:
    return settings_for(db_url, redis_url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    install(rt)
    yield rt
    rt.close()


@pytest.fixture
def base(settings: Settings) -> Iterator[str]:
    with running_app(settings) as url:
        yield url


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAgent]:
    monkeypatch.setenv(AGENT_SECRET_ENV, AGENT_SECRET)
    with fake_agent() as fake:
        yield fake


def sent_broadcast(sessions: sessionmaker[Session], agent_url: str) -> tuple[str, int]:
    """A sending broadcast whose one recipient (PHONE) got wamid.T0; its agent is the fake."""
    with sessions() as s, s.begin():
        broadcast = make_broadcast(s)
        agent_row = s.get(Agent, broadcast.agent_id)
        assert agent_row is not None
        agent_row.url, agent_row.secret_env = agent_url, AGENT_SECRET_ENV
        (recipient,) = add_recipients(s, broadcast, [f"+{PHONE}"])
        broadcast.status = BroadcastStatus.SENDING
        recipient.status = RecipientStatus.SENDING
        recipient.attempts = 1
        s.flush()
        mark_sent(
            s, recipient, wamid="wamid.T0", wa_id=PHONE, message_status="accepted", at=SENT_AT
        )
        return broadcast.id, recipient.id


def message_body(
    message: dict[str, Any], *, phone: bool = True, username: str | None = None
) -> bytes:
    contact: dict[str, Any] = {"profile": {"name": "Ana"}, "user_id": BSUID}
    sender: dict[str, Any] = {"from_user_id": BSUID}
    if phone:
        contact["wa_id"], sender["from"] = PHONE, PHONE
    if username:
        contact["profile"]["username"] = username
    full = {**sender, "timestamp": str(T + 60), **message}
    return meta_change("messages", {"contacts": [contact], "messages": [full]})


def send(base: str, raw: bytes) -> None:
    assert post(base, "/webhooks/whatsapp", raw, meta_headers(raw)).status_code == 200


def recipient_row(sessions: sessionmaker[Session], rid: int) -> Recipient:
    with sessions() as s:
        row = s.get(Recipient, rid)
        assert row is not None
        s.expunge(row)
        return row


def counters_match(sessions: sessionmaker[Session], broadcast_id: str) -> None:
    with sessions() as s:
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None
        assert stored_counts(broadcast) == recount(s, broadcast_id)


def test_a_user_id_only_sender_is_kept_attributed_and_merged_when_the_number_shows(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_id, rid = sent_broadcast(sessions, agent.url)
    with sessions() as s, s.begin():  # a status told us the recipient's user id
        row = s.get(Recipient, rid)
        assert row is not None
        row.user_id = BSUID
    reply = {"id": "wamid.IN1", "type": "text", "text": {"body": "Interested!"}}
    send(base, message_body(reply, phone=False, username="@ana"))
    drain(runtime)
    (call,) = agent.calls
    body = call.json
    assert body["message"]["from_user_id"] == BSUID and body["message"]["kind"] == "text"
    # Attributed by user id; the number is the one the broadcast dialled for that user id.
    assert body["broadcast_context"]["broadcast_id"] == broadcast_id
    assert (body["contact"]["phone"], body["contact"]["user_id"]) == (f"+{PHONE}", BSUID)
    assert body["contact"]["username"] == "@ana"
    assert recipient_row(sessions, rid).responded_at is not None
    # Later the same person writes with their number too: still one contact, now with both.
    send(base, message_body({"id": "wamid.IN2", "type": "text", "text": {"body": "ok"}}))
    drain(runtime)
    with sessions() as s:
        contacts = list(s.scalars(select(Contact)))
        assert [(c.phone, c.user_id, c.username) for c in contacts] == [
            (f"+{PHONE}", BSUID, "@ana")
        ]
    counters_match(sessions, broadcast_id)


def test_a_username_stranger_is_kept_without_a_number_and_merged_into_it_later(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    # A stranger (no broadcast reached them) writes with a username only: a contact with no
    # number is created, and the agent still gets the message.
    sent_broadcast(sessions, agent.url)
    first = {"id": "wamid.A", "type": "text", "text": {"body": "first"}}
    send(base, message_body(first, phone=False, username="@ana"))
    drain(runtime)
    assert agent.calls[0].json["contact"]["phone"] is None
    with sessions() as s:
        (placeholder,) = s.scalars(select(Contact))
        assert (placeholder.phone, placeholder.user_id) == (None, BSUID)
    with sessions() as s, s.begin():  # meanwhile their number is imported as a contact
        s.add(Contact(phone=f"+{PHONE}", wa_id=PHONE, source="import", attributes={}))
    send(base, message_body({"id": "wamid.B", "type": "text", "text": {"body": "second"}}))
    drain(runtime)
    with sessions() as s:
        with_user = list(s.scalars(select(Contact).where(Contact.user_id == BSUID)))
        assert [(c.phone, c.wa_id) for c in with_user] == [(f"+{PHONE}", PHONE)]
    assert agent.calls[1].json["contact"]["user_id"] == BSUID


def test_media_replies_reach_the_agent_with_caption_and_media_id(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_id, rid = sent_broadcast(sessions, agent.url)
    image = {
        "id": "wamid.IMG",
        "type": "image",
        "context": {"from": "15550001111", "id": "wamid.T0"},
        "image": {"caption": "This one", "mime_type": "image/jpeg", "sha256": "abc", "id": "1003"},
    }
    send(base, message_body(image))
    drain(runtime)
    message = agent.calls[0].json["message"]
    assert (message["kind"], message["text"], message["caption"]) == (
        "image",
        "This one",
        "This one",
    )
    assert message["media"]["id"] == "1003" and message["media"]["mime_type"] == "image/jpeg"
    assert message["is_reply"] is True and message["raw"]["id"] == "wamid.IMG"
    assert recipient_row(sessions, rid).responded_at is not None
    counters_match(sessions, broadcast_id)


@pytest.mark.parametrize(
    "message",
    [
        {"id": "wamid.R", "type": "reaction", "reaction": {"message_id": "wamid.T0", "emoji": "❤️"}},
        {"id": "wamid.R0", "type": "reaction", "reaction": {"message_id": "wamid.T0"}},
        {
            "id": "wamid.SYS",
            "type": "system",
            "system": {
                "body": "Ana changed her number",
                "wa_id": "15551119999",
                "type": "user_changed_number",
            },
        },
        {"id": "wamid.REV", "type": "revoke", "revoke": {"original_message_id": "wamid.IN0"}},
    ],
    ids=["reaction", "reaction-removed", "system", "revoke"],
)
def test_reactions_and_notices_reach_the_agent_as_what_they_are_without_responding(
    base: str,
    runtime: Runtime,
    sessions: sessionmaker[Session],
    agent: FakeAgent,
    message: dict[str, Any],
) -> None:
    broadcast_id, rid = sent_broadcast(sessions, agent.url)
    send(base, message_body(message))
    drain(runtime)
    (call,) = agent.calls
    delivered = call.json["message"]
    assert delivered["kind"] == message["type"] and delivered["is_reply"] is False
    if message["type"] == "reaction":
        assert delivered["reaction"]["message_id"] == "wamid.T0"
        assert delivered["reaction"]["emoji"] == message["reaction"].get("emoji")
    assert recipient_row(sessions, rid).responded_at is None
    with sessions() as s:
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None and broadcast.responded_count == 0
    counters_match(sessions, broadcast_id)


def test_a_signed_status_naming_a_draft_broadcasts_recipient_changes_nothing(
    base: str, runtime: Runtime, sessions: sessionmaker[Session]
) -> None:
    with sessions() as s, s.begin():
        broadcast = make_broadcast(s)
        (recipient,) = add_recipients(s, broadcast, [f"+{PHONE}"])
        broadcast_id, rid = broadcast.id, recipient.id
    forged = encode(broadcast_id, rid)
    send(
        base,
        meta_statuses(status("wamid.FORGED", "read", T, PHONE, biz_opaque_callback_data=forged)),
    )
    drain(runtime)
    row = recipient_row(sessions, rid)
    assert (row.status, row.wamid, row.sent_at) == (RecipientStatus.PENDING, None, None)
    counters_match(sessions, broadcast_id)


def test_a_retryable_asynchronous_failure_resends_the_same_row_and_keeps_the_old_wamid(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_id, rid = sent_broadcast(sessions, agent.url)
    failure = status(
        "wamid.T0",
        "failed",
        T + 5,
        PHONE,
        errors=[
            {
                "code": 131000,
                "title": "Something went wrong",
                "error_data": {"details": "Message failed to send"},
            }
        ],
    )
    send(base, meta_statuses(failure))
    drain(runtime)
    row = recipient_row(sessions, rid)
    assert (row.status, row.wamid, row.wamid_history) == (
        RecipientStatus.PENDING,
        None,
        ["wamid.T0"],
    )
    assert row.error_code == 131000 and row.next_attempt_at is not None
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Recipient)) == 1  # no second row
    # The same failure again, or a late `delivered` of the old send, changes nothing.
    send(base, meta_statuses(failure, status("wamid.T0", "delivered", T + 9, PHONE)))
    drain(runtime)
    again = recipient_row(sessions, rid)
    assert (again.status, again.wamid_history, again.delivered_at) == (
        RecipientStatus.PENDING,
        ["wamid.T0"],
        None,
    )
    counters_match(sessions, broadcast_id)


def test_a_permanent_asynchronous_failure_fails_the_recipient(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_id, rid = sent_broadcast(sessions, agent.url)
    failure = status(
        "wamid.T0",
        "failed",
        T + 5,
        PHONE,
        errors=[{"code": 131026, "title": "Message undeliverable"}],
    )
    send(base, meta_statuses(failure))
    drain(runtime)
    row = recipient_row(sessions, rid)
    assert (row.status, row.error_code) == (RecipientStatus.FAILED, 131026)
    counters_match(sessions, broadcast_id)


def test_an_asynchronous_payment_failure_pauses_the_broadcast_and_keeps_the_recipient(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    broadcast_id, rid = sent_broadcast(sessions, agent.url)
    failure = status(
        "wamid.T0",
        "failed",
        T + 5,
        PHONE,
        errors=[{"code": 131042, "title": "Business eligibility payment issue"}],
    )
    send(base, meta_statuses(failure))
    drain(runtime)
    with sessions() as s:
        broadcast = s.get(Broadcast, broadcast_id)
        assert broadcast is not None and broadcast.status == BroadcastStatus.PAUSED
        assert "131042" in str(broadcast.status_reason)
    assert recipient_row(sessions, rid).status == RecipientStatus.PENDING
    counters_match(sessions, broadcast_id)


def test_one_bad_message_in_a_body_never_costs_the_others(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    sent_broadcast(sessions, agent.url)
    good = {
        "from": PHONE,
        "id": "wamid.GOOD",
        "timestamp": str(T + 60),
        "type": "text",
        "text": {"body": "still here \ud83d"},
    }
    raw = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "W",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "metadata": {"phone_number_id": "100200300"},
                                "contacts": [{"profile": {"name": "Ana"}, "wa_id": PHONE}],
                                "messages": [
                                    {
                                        "from": "=1+1",
                                        "id": "wamid.EVIL",
                                        "type": "text",
                                        "text": {"body": "x"},
                                    },
                                    {
                                        "from": "abc",
                                        "id": "wamid.ABC",
                                        "type": "text",
                                        "text": {"body": "y"},
                                    },
                                    good,
                                    {
                                        "from": PHONE,
                                        "id": "wamid.LATE",
                                        "timestamp": "9999-12-31T23:59:59-12:00",
                                        "type": "text",
                                        "text": {"body": "when?"},
                                    },
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    send(base, raw)
    drain(runtime)
    with sessions() as s:
        texts = sorted(str(m.text) for m in s.scalars(select(Message)))
        assert texts == ["still here \ufffd", "when?"]
        assert s.scalar(select(func.count()).select_from(Contact)) == 1
        years = {m.timestamp.year for m in s.scalars(select(Message))}
        assert years <= {datetime.now(UTC).year, SENT_AT.year}
    assert len(agent.calls) == 2


def test_the_sandbox_sends_user_id_only_media_and_reaction_messages_that_reach_the_agent(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    from kapso.sandbox import SandboxConfig, run_sandbox
    from kapso.sandbox.emitter import user_id_for

    sent_broadcast(sessions, agent.url)
    hidden = "15552220001"
    config = SandboxConfig(
        latency_ms=0,
        webhook_url=f"{base}/webhooks/whatsapp",
        app_secret=APP_SECRET,
        hidden_number_rules=["0001"],
        batch_interval_ms=10,
        duplicate_rate=0,
    )
    with run_sandbox(config) as sandbox:
        sandbox.inbound(hidden, "Is this in stock?", kind="image")
        sandbox.inbound(hidden, "👍", kind="reaction", context_id="wamid.T0")
        sandbox.inbound(PHONE, "Hello", context_id="wamid.T0")

        deadline = time.monotonic() + 30  # an upper bound to give up, not a timing assertion
        while len(agent.calls) < 3:
            assert time.monotonic() < deadline, f"agent got {len(agent.calls)} of 3 messages"
            drain(runtime)
            time.sleep(0.05)
    by_kind = {c.json["message"]["kind"]: c.json for c in agent.calls}
    image = by_kind["image"]
    assert image["message"]["caption"] == "Is this in stock?" and image["message"]["media"]["id"]
    assert image["contact"]["phone"] is None
    assert image["contact"]["user_id"] == user_id_for(hidden)
    assert image["contact"]["username"]
    assert by_kind["reaction"]["message"]["reaction"]["emoji"] == "👍"
    assert by_kind["text"]["contact"]["user_id"] == user_id_for(PHONE)
    with sessions() as s:
        hidden_contact = s.scalar(select(Contact).where(Contact.user_id == user_id_for(hidden)))
        assert hidden_contact is not None and hidden_contact.phone is None


def test_a_contact_known_only_by_user_id_can_be_found_and_opted_out(
    sessions: sessionmaker[Session],
) -> None:
    from broadcasts import contacts

    with sessions() as s, s.begin():
        s.add(Contact(phone=None, user_id=BSUID, username="@ana", source="whatsapp", attributes={}))
    with sessions() as s, s.begin():
        found = contacts.find_contact(s, BSUID)
        assert found is not None and found.username == "@ana"
        contacts.set_opt_out(s, BSUID, True, "asked by phone")
    with sessions() as s:
        contact = s.scalar(select(Contact).where(Contact.user_id == BSUID))
        assert contact is not None and contact.opted_out_at is not None
        eligible = contacts.list_contacts(s, eligible_only=True)
        assert contact.id not in [c.id for c in eligible]


def test_a_kapso_batch_without_the_event_header_is_processed_from_its_body(
    base: str, runtime: Runtime, sessions: sessionmaker[Session], agent: FakeAgent
) -> None:
    from kapso.webhooks import sign

    sent_broadcast(sessions, agent.url)

    def received(wamid: str, conversation: dict[str, Any]) -> dict[str, Any]:
        return {
            "event": "whatsapp.message.received",
            "data": {
                "message": {
                    "id": wamid,
                    "timestamp": str(T + 60),
                    "type": "text",
                    "text": {"body": f"hi from {wamid}"},
                    "kapso": {"direction": "inbound"},
                },
                "conversation": {"id": "c1", "phone_number_id": "100200300", **conversation},
                "is_new_conversation": False,
                "phone_number_id": "100200300",
            },
        }

    body = {
        "batch": True,
        "data": [
            received("wamid.K1", {"phone_number": f"+{PHONE}"}),
            received("wamid.K2", {"user_id": "BR.1502576394655843"}),  # no phone number given
        ],
    }
    raw = json.dumps(body).encode()
    headers = {"X-Webhook-Signature": sign(raw, KAPSO_SECRET), "Content-Type": "application/json"}
    assert post(base, "/webhooks/kapso", raw, headers).status_code == 200
    drain(runtime)
    texts = sorted(c.json["message"]["text"] for c in agent.calls)
    assert texts == ["hi from wamid.K1", "hi from wamid.K2"]
    by_text = {c.json["message"]["text"]: c.json for c in agent.calls}
    assert by_text["hi from wamid.K2"]["contact"]["user_id"] == "BR.1502576394655843"
