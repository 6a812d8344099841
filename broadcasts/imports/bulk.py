"""Set-based writes of one import batch, one statement each, on SQLite and PostgreSQL.

ORM objects per row would cost more than everything else of an import together; these statements
take a whole batch as one JSON document (json_array_elements on PostgreSQL, json_each on SQLite:
one parameter, no per-value adaptation in Python) and stay inside the caller's transaction.
Look-ups are written `= ANY(ARRAY(...))` on PostgreSQL so the planner probes the unique indexes
instead of scanning a whole broadcast (its row estimate for a JSON list is a blind 100).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from broadcasts.enums import RecipientStatus


@dataclass(frozen=True, slots=True)
class ContactState:
    id: int | None
    is_test: bool
    opted_out: bool

    @property
    def excluded(self) -> bool:
        return self.is_test or self.opted_out


NO_CONTACT = ContactState(None, False, False)


def _sqlite_time(moment: datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime writes (naive UTC), so ORM reads it back alike.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def relax_commit(session: Session) -> None:
    """Let PostgreSQL acknowledge this batch's commit before its WAL reaches the disk.

    Safe here: WAL is replayed in order, and the import's final commit is synchronous, so once
    the import says "done" every batch before it is durable too; a crash before that leaves an
    import still "running", whose rows the operator can see and remove.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


def upsert_contacts(
    session: Session,
    contacts: Sequence[tuple[str, str | None, dict[str, str]]],
    *,
    source: str,
    now: datetime,
    is_test: bool = False,
) -> dict[str, ContactState]:
    """Create or update contacts by phone, merging attributes (new values win, name kept).

    `contacts` holds (phone, name, attributes) with each phone once. Returns every one's state.
    """
    if not contacts:
        return {}
    conn = session.connection()
    rows: Sequence[Any]
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            "INSERT INTO contacts"
            " (phone, name, attributes, is_test, source, created_at, updated_at)"
            " SELECT e ->> 0, e ->> 1, e -> 2, %(test)s, %(source)s, %(now)s, %(now)s"
            " FROM json_array_elements(%(doc)s::json) AS e"
            " ON CONFLICT (phone) DO UPDATE SET"
            " attributes = (contacts.attributes::jsonb || excluded.attributes::jsonb)::json,"
            " name = COALESCE(contacts.name, excluded.name),"
            " is_test = contacts.is_test OR excluded.is_test,"
            " updated_at = excluded.updated_at"
            " RETURNING id, phone, is_test, opted_out_at",
            {"doc": json.dumps(contacts), "source": source, "now": now, "test": is_test},
        ).all()
    else:
        stamp = _sqlite_time(now)
        rows = conn.exec_driver_sql(
            "INSERT INTO contacts"
            " (phone, name, attributes, is_test, source, created_at, updated_at)"
            " SELECT value ->> 0, value ->> 1, json(value -> 2), ?, ?, ?, ? FROM json_each(?)"
            " WHERE true"
            " ON CONFLICT (phone) DO UPDATE SET"
            " attributes = json_patch(contacts.attributes, excluded.attributes),"
            " name = COALESCE(contacts.name, excluded.name),"
            " is_test = contacts.is_test OR excluded.is_test,"
            " updated_at = excluded.updated_at"
            " RETURNING id, phone, is_test, opted_out_at",
            (int(is_test), source, stamp, stamp, json.dumps(contacts)),
        ).all()
    return {phone: ContactState(cid, bool(test), out is not None) for cid, phone, test, out in rows}


def find_contacts(session: Session, phones: Sequence[str]) -> dict[str, ContactState]:
    """The state of the contacts among `phones` that exist."""
    if not phones:
        return {}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        result = conn.exec_driver_sql(
            "SELECT id, phone, is_test, opted_out_at FROM contacts"
            " WHERE phone = ANY(ARRAY(SELECT json_array_elements_text(%(doc)s::json)))",
            {"doc": json.dumps(list(phones))},
        )
    else:
        result = conn.exec_driver_sql(
            "SELECT id, phone, is_test, opted_out_at FROM contacts"
            " WHERE phone IN (SELECT value FROM json_each(?))",
            (json.dumps(list(phones)),),
        )
    return {
        phone: ContactState(cid, bool(test), out is not None) for cid, phone, test, out in result
    }


def existing_recipients(
    session: Session, broadcast_id: str, phones: Sequence[str]
) -> dict[str, int | None]:
    """phone → import_id of the recipients of the broadcast among `phones`."""
    if not phones:
        return {}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        result = conn.exec_driver_sql(
            "SELECT phone, import_id FROM recipients WHERE broadcast_id = %(b)s"
            " AND phone = ANY(ARRAY(SELECT json_array_elements_text(%(doc)s::json)))",
            {"b": broadcast_id, "doc": json.dumps(list(phones))},
        )
    else:
        result = conn.exec_driver_sql(
            "SELECT phone, import_id FROM recipients"
            " WHERE broadcast_id = ? AND phone IN (SELECT value FROM json_each(?))",
            (broadcast_id, json.dumps(list(phones))),
        )
    return {phone: import_id for phone, import_id in result}


@dataclass(frozen=True, slots=True)
class Added:
    """What adding a batch did: the phones inserted now, and those already in the broadcast
    (phone → the import that added them, None when added otherwise)."""

    new: set[str]
    existing: dict[str, int | None]


def add_recipient_rows(
    session: Session,
    broadcast_id: str,
    rows: Sequence[tuple[str, dict[str, str], int | None]],
    *,
    import_id: int | None,
    now: datetime,
) -> Added:
    """Insert (phone, params, contact_id) rows not yet in the broadcast (each phone once).

    Counters are the caller's to bump, by len(new), never by len(rows).
    """
    if not rows:
        return Added(set(), {})
    conn = session.connection()
    pending = RecipientStatus.PENDING.value
    if conn.dialect.name == "postgresql":
        result = conn.exec_driver_sql(
            "INSERT INTO recipients"
            " (broadcast_id, phone, params, contact_id, import_id, status, attempts, created_at)"
            " SELECT %(b)s, e ->> 0, e -> 1, (e ->> 2)::bigint, %(i)s, %(status)s, 0, %(now)s"
            " FROM json_array_elements(%(doc)s::json) AS e"
            " ON CONFLICT (broadcast_id, phone) DO NOTHING RETURNING phone",
            {
                "b": broadcast_id,
                "i": import_id,
                "status": pending,
                "now": now,
                "doc": json.dumps(rows),
            },
        )
        new = {phone for (phone,) in result}
        conflicts = [r[0] for r in rows if r[0] not in new]
        return Added(new, existing_recipients(session, broadcast_id, conflicts))
    # SQLite: the transaction holds the only write lock (BEGIN IMMEDIATE), so what exists now is
    # exactly what would conflict. Looking first, then inserting without RETURNING, spares
    # sqlite3 handing back one RETURNING row per step, each step releasing and re-taking the
    # GIL that the thread reading the file holds.
    existing = existing_recipients(session, broadcast_id, [r[0] for r in rows])
    fresh = [r for r in rows if r[0] not in existing]
    if not fresh:
        return Added(set(), existing)
    stamp = _sqlite_time(now)
    inserted = conn.exec_driver_sql(
        "INSERT INTO recipients"
        " (broadcast_id, phone, params, contact_id, import_id, status, attempts, created_at)"
        " SELECT ?, value ->> 0, json(value -> 1), value ->> 2, ?, ?, 0, ? FROM json_each(?)"
        " WHERE true ON CONFLICT (broadcast_id, phone) DO NOTHING",
        (broadcast_id, import_id, pending, stamp, json.dumps(fresh)),
    ).rowcount
    if inserted != len(fresh):  # SQLite has one writer at a time; this cannot race
        raise RuntimeError(f"expected to insert {len(fresh)} recipients, inserted {inserted}")
    return Added({r[0] for r in fresh}, existing)


def delete_import_recipients(session: Session, broadcast_id: str, import_id: int) -> int:
    """Remove what one import added (it is undone after a failure); returns how many."""
    conn = session.connection()
    marker = "%s" if conn.dialect.name == "postgresql" else "?"
    result = conn.exec_driver_sql(
        f"DELETE FROM recipients WHERE broadcast_id = {marker} AND import_id = {marker}"
        " RETURNING id",
        (broadcast_id, import_id),
    )
    return len(result.all())
