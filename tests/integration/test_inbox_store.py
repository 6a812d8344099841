"""The web process's inbox write path, on SQLite and PostgreSQL: bodies stored exactly as
received, each dedup key once, what the ORM and the workers read back."""

from __future__ import annotations

from sqlalchemy import Engine, select

from bot.http.inbox_writer import store_events
from broadcasts.models import InboxEvent
from jobs.inbox import NewEvent, dedup_key

BODY = '{"object":"whatsapp_business_account","entry":[{"text":"Olá 👋 \\"quoted\\" \\\\ tab\\t"}]}'


def event(body: str, key: str | None = None, event_type: str | None = "messages") -> NewEvent:
    return NewEvent("meta", key or dedup_key("meta", body.encode()), event_type, body)


def test_bodies_are_stored_as_received_and_each_key_once(engine: Engine) -> None:
    first = event(BODY)
    other = event('{"object":"whatsapp_business_account","entry":[]}', event_type="x" * 80)
    with engine.begin() as conn:
        stored = store_events(conn, [first, other, first])
    assert sorted(size for _, size in stored) == sorted([len(BODY), len(other.body)])
    with engine.begin() as conn:
        again = store_events(conn, [first, event("{}", key="meta:key:new", event_type=None)])
    assert [size for _, size in again] == [2]  # only the new key; the first is a redelivery
    with engine.connect() as conn:
        rows = {r.dedup_key: r for r in conn.execute(select(InboxEvent))}
    assert len(rows) == 3
    assert rows[first.dedup_key].body == BODY
    assert rows[first.dedup_key].event_type == "messages"
    assert rows[other.dedup_key].event_type == "x" * 64
    assert rows["meta:key:new"].event_type is None
    assert all(r.attempts == 0 and r.processed_at is None for r in rows.values())
    assert all(r.received_at is not None for r in rows.values())
    ids = {event_id for event_id, _ in stored + again}
    assert ids == {r.id for r in rows.values()}
