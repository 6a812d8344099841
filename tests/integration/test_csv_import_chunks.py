"""Rows of one number spread over several chunks of the load, on SQLite and PostgreSQL, and
numbers added to the broadcast by someone else while a file is imported (PostgreSQL)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from broadcasts import contacts
from broadcasts.db import transaction
from broadcasts.enums import ImportStatus
from broadcasts.imports import import_csv
from broadcasts.imports.bulk import ImportConflict
from broadcasts.models import Contact, Import, Recipient
from tests.factories import OPERATOR
from tests.integration.test_csv_import import counters_match, draft

A, OPTED, TEST, PRESENT, NEW = (f"+4474001234{n:02d}" for n in range(5))
# Four rows a chunk: every number comes back within its chunk or in a later one.
ROWS = [
    (A, "Lisbon"),  # 2: accepted
    (OPTED, "Porto"),  # 3: opted-out
    (A, "Faro"),  # 4: duplicate, same chunk
    (PRESENT, "Braga"),  # 5: already present
    (OPTED, "Evora"),  # 6: opted-out again, next chunk
    (TEST, "Sintra"),  # 7: test contact
    (A, "Aveiro"),  # 8: duplicate, next chunk
    (PRESENT, "Lagos"),  # 9: already present again
    (TEST, "Beja"),  # 10: test contact again
    (NEW, "Tomar"),  # 11: accepted
    (NEW, "Viseu"),  # 12: duplicate, same chunk
    (A, "Leiria"),  # 13: duplicate, two chunks on
]


def _import(sessions: sessionmaker[Session], broadcast_id: str, data: str) -> Any:
    return import_csv(
        sessions,
        broadcast_id,
        io.BytesIO(data.encode()),
        filename="f.csv",
        region=None,
        by=OPERATOR,
        batch_size=4,
    )


def test_a_numbers_first_row_decides_for_its_later_rows_across_chunks(
    db_url: str, sessions: sessionmaker[Session]
) -> None:
    broadcast_id = draft(sessions)
    _import(sessions, broadcast_id, f"phone_number,param1\n{PRESENT},Before\n")
    with transaction(sessions) as session:
        contacts.set_opt_out(session, OPTED, True, "STOP")
        contacts.mark_test(session, TEST)
    data = "phone_number,param1,city\n" + "".join(
        f"{phone},x{line},{city}\n" for line, (phone, city) in enumerate(ROWS, start=2)
    )

    summary = _import(sessions, broadcast_id, data)

    assert (summary.accepted, summary.duplicates, summary.already_present) == (2, 4, 2)
    assert (summary.opted_out, summary.test_excluded, summary.invalid) == (2, 2, 0)
    assert summary.accepted_by_country == {"+44": 2}
    report = summary.error_report_csv or ""
    reported = [line.split(",")[:2] for line in report.splitlines()[1:]]
    assert reported == [
        ["3", "opted_out"],
        ["4", "duplicate"],
        ["6", "opted_out"],
        ["7", "test_contact"],
        ["8", "duplicate"],
        ["10", "test_contact"],
        ["12", "duplicate"],
        ["13", "duplicate"],
    ]
    assert counters_match(sessions, broadcast_id) == 3
    with transaction(sessions) as session:
        recipients = session.execute(
            select(Recipient.phone, Recipient.params, Recipient.contact_id)
            .where(Recipient.broadcast_id == broadcast_id)
            .order_by(Recipient.id)
        ).all()
        ids = {phone: id_ for phone, id_ in session.execute(select(Contact.phone, Contact.id))}
        cities = {c.phone: c.attributes.get("city") for c in session.scalars(select(Contact)).all()}
    assert [(r.phone, r.params, r.contact_id) for r in recipients] == [
        (PRESENT, {"1": "Before"}, None),
        (A, {"1": "x2"}, ids[A]),
        (NEW, {"1": "x11"}, ids[NEW]),
    ]
    # Every number's first row in the file, and only that row, wrote its contact.
    assert cities == {A: "Lisbon", OPTED: "Porto", PRESENT: "Braga", TEST: "Sintra", NEW: "Tomar"}


@contextmanager
def added_meanwhile(
    engine: Engine, broadcast_id: str, phone: str, *, in_flight: bool
) -> Iterator[None]:
    """Another connection adds `phone` to the broadcast as the import stages its second chunk.

    A plain INSERT: the service's own ways of adding recipients also update the broadcast's
    counters, so they wait for the import's lock on the broadcast row. Committed at once, or
    (`in_flight`) only once the import waits for that transaction: a number no statement of
    the import could have seen before it met the number in the unique index.
    """
    other = engine.connect()
    watcher = engine.connect()
    staged = 0
    threads: list[threading.Thread] = []

    def commit_when_waiting(pid: int) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            ).scalar()
            watcher.rollback()
            if waiting == "Lock":
                break
            time.sleep(0.05)
        other.commit()

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal staged
        if not statement.startswith("TRUNCATE import_chunk"):
            return
        staged += 1
        if staged != 2:
            return
        other.execute(
            text(
                "INSERT INTO recipients (broadcast_id, phone, params, status, attempts,"
                " created_at) VALUES (:b, :p, '{}', 'pending', 0, now())"
            ),
            {"b": broadcast_id, "p": phone},
        )
        if in_flight:
            pid = conn.connection.dbapi_connection.info.backend_pid
            thread = threading.Thread(target=commit_when_waiting, args=(pid,))
            threads.append(thread)
            thread.start()
        else:
            other.commit()

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", before)
        for thread in threads:
            thread.join()
        other.close()
        watcher.close()


@pytest.mark.parametrize(
    ("earlier", "in_flight"),
    [(False, False), (False, True), (True, True)],
    ids=["new-broadcast-committed", "new-broadcast-in-flight", "with-recipients-in-flight"],
)
def test_a_number_added_during_the_import_fails_it_and_keeps_nothing(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], earlier: bool, in_flight: bool
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: nothing is added to a broadcast during an import")
    broadcast_id = draft(sessions)
    if earlier:
        _import(sessions, broadcast_id, "phone_number,param1\n+447400999999,Before\n")
    numbers = [f"+4474005{i:05d}" for i in range(12)]
    data = "phone_number,param1\n" + "".join(f"{n},x\n" for n in numbers)

    with (
        added_meanwhile(engine, broadcast_id, numbers[10], in_flight=in_flight),
        pytest.raises(ImportConflict, match="added to the broadcast while"),
    ):
        _import(sessions, broadcast_id, data)

    with transaction(sessions) as session:
        kept = session.scalars(
            select(Recipient.phone).where(Recipient.broadcast_id == broadcast_id)
        ).all()
        failed = session.scalars(select(Import).order_by(Import.id.desc())).first()
    assert sorted(kept) == sorted([numbers[10]] + (["+447400999999"] if earlier else []))
    assert failed is not None and failed.status == ImportStatus.FAILED
    assert failed.error is not None and "added to the broadcast while" in failed.error
