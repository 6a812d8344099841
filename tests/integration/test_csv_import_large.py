"""Large files, whose rows worker processes check, on SQLite and PostgreSQL: every row accounted
for as with a small file, the report in line order, and nothing kept when a worker fails."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from broadcasts import contacts
from broadcasts.db import transaction
from broadcasts.enums import ImportStatus
from broadcasts.errors import ValidationFailed
from broadcasts.imports import import_csv
from broadcasts.imports.chunks import PARALLEL_MIN_BYTES
from broadcasts.models import Contact, Import, Recipient
from tests.factories import OPERATOR
from tests.integration.test_csv_import import counters_match, draft, report_rows, upload

ROWS = 40_000
OPTED_OUT, TEST, PRESENT = 0, 2, 3  # rows whose number is flagged or already a recipient


def phone(i: int) -> str:
    return f"+4474{i:08d}"


def wide_file(path: Path, *, nul_at: int | None = None) -> None:
    """phone_number,param1,name,city: every 89th row in scientific notation, every 97th (not
    89th) row the number of row 1 again."""
    padding = "x" * 80
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone_number,param1,name,city\n")
        for i in range(ROWS):
            if i == nul_at:
                out.write(f"{phone(i)},bro\x00ken,Name,Lisbon\n")
            elif i and i % 89 == 0:
                out.write(f"4.474E+11,{padding}{i},Name {i},Lisbon\n")
            elif i and i % 97 == 0:
                out.write(f"{phone(1)},{padding}{i},Name {i},Lisbon\n")
            else:
                out.write(f"{phone(i)},{padding}{i},Name {i},Lisbon\n")


def expected_reason(i: int) -> str | None:
    if i == OPTED_OUT:
        return "opted_out"
    if i == TEST:
        return "test_contact"
    if i and i % 89 == 0:
        return "phone_scientific"
    if i and i % 97 == 0:
        return "duplicate"
    return None


def test_large_file_is_checked_in_parallel_and_every_row_accounted_for(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "large.csv"
    wide_file(path)
    assert path.stat().st_size >= PARALLEL_MIN_BYTES
    broadcast_id = draft(sessions)
    with transaction(sessions) as session:
        contacts.set_opt_out(session, phone(OPTED_OUT), True, "STOP")
        contacts.mark_test(session, phone(TEST))
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(f"phone_number,param1\n{phone(PRESENT)},Before\n")
    upload(db_url, broadcast_id, earlier, tmp_path / "earlier.errors.csv")

    summary = upload(db_url, broadcast_id, path, tmp_path / "r.csv")

    invalid = len([i for i in range(1, ROWS) if i % 89 == 0])
    duplicates = len([i for i in range(1, ROWS) if i % 97 == 0 and i % 89 != 0])
    assert summary["rows"] == ROWS
    assert summary["invalid_by_reason"] == {"phone_scientific": invalid}
    assert (summary["duplicates"], summary["opted_out"], summary["test_excluded"]) == (
        duplicates,
        1,
        1,
    )
    assert summary["already_present"] == 1
    assert summary["accepted"] == ROWS - invalid - duplicates - 3
    assert counters_match(sessions, broadcast_id) == summary["accepted"] + 1
    reported = [(int(r[0]), r[1]) for r in report_rows(tmp_path / "r.csv")[1:]]
    expected = [(i + 2, reason) for i in range(ROWS) if (reason := expected_reason(i))]
    assert reported == expected  # line order, across the workers' chunks
    duplicate_row = report_rows(tmp_path / "r.csv")[4]  # after rows 0 and 2 and the 89th
    assert duplicate_row[1:3] == ["duplicate", f"same number ({phone(1)}) as an earlier row"]
    assert duplicate_row[3] == phone(1)  # the row's own cells, read again from the file
    with transaction(sessions) as session:
        row = session.execute(
            select(Recipient.params, Recipient.import_id).where(
                Recipient.broadcast_id == broadcast_id, Recipient.phone == phone(5)
            )
        ).one()
        assert row.params == {"1": "x" * 80 + "5"}
        contact = session.scalars(select(Contact).where(Contact.phone == phone(5))).one()
        assert (contact.name, contact.attributes) == (
            "Name 5",
            {"name": "Name 5", "city": "Lisbon"},
        )
        first = session.scalars(select(Recipient.phone).order_by(Recipient.id).limit(3)).all()
        assert first == [phone(PRESENT), phone(1), phone(4)]  # file order is sending order


def test_workers_follow_assume_international_and_count_accepted_numbers_by_country(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    # Numbers whose + Excel stripped: every third one American, the others British.
    rows = 12_000
    path = tmp_path / "stripped.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone_number,param1\n")
        for i in range(rows):
            number = f"1415{2_000_000 + i:07d}" if i % 3 == 0 else f"4474{i:08d}"
            out.write(f"{number},{'x' * 400}{i}\n")
    assert path.stat().st_size >= PARALLEL_MIN_BYTES

    refused = upload(db_url, draft(sessions), path, tmp_path / "refused.csv")
    assert (refused["accepted"], refused["invalid_by_reason"]) == (
        0,
        {"phone_no_country_code": rows},
    )
    assert refused["accepted_by_country"] == {}

    broadcast_id = draft(sessions, name="Assumed")
    with transaction(sessions) as session:
        contacts.set_opt_out(session, "+447400000001", True, "STOP")  # not accepted, not counted
    summary = upload(db_url, broadcast_id, path, tmp_path / "r.csv", "--assume-international")
    american = len(range(0, rows, 3))
    assert summary["assume_international"] is True
    assert (summary["accepted"], summary["opted_out"]) == (rows - 1, 1)
    assert summary["accepted_by_country"] == {"+44": rows - american - 1, "+1": american}
    assert counters_match(sessions, broadcast_id) == rows - 1


class ChangingFile(io.BytesIO):
    """A file overwritten after it was checked: the copy the workers read has a NUL byte."""

    def __init__(self, first: bytes, later: bytes) -> None:
        super().__init__(first)
        self.later = later
        self.rewinds = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) == (0, 0):
            self.rewinds += 1
            if self.rewinds == 4:  # size check, sniff, checking pass, then the copy for workers
                super().seek(0)
                self.truncate()
                self.write(self.later)
        return super().seek(offset, whence)


def test_a_worker_that_fails_leaves_nothing_of_the_file(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    good, broken = tmp_path / "good.csv", tmp_path / "broken.csv"
    wide_file(good)
    wide_file(broken, nul_at=ROWS - 10)
    broadcast_id = draft(sessions)
    source: BinaryIO = ChangingFile(good.read_bytes(), broken.read_bytes())
    with pytest.raises(ValidationFailed, match=f"Line {ROWS - 8} contains binary"):
        import_csv(sessions, broadcast_id, source, filename="x.csv", region=None, by=OPERATOR)
    assert counters_match(sessions, broadcast_id) == 0
    with transaction(sessions) as session:
        failed = session.scalars(select(Import)).one()
        assert (failed.status, failed.error) == (
            ImportStatus.FAILED,
            f"Line {ROWS - 8} contains binary (NUL) bytes; this is not a text CSV file.",
        )
        assert session.scalar(select(func.count()).select_from(Recipient)) == 0
        assert session.scalar(select(func.count()).select_from(Contact)) == 0
