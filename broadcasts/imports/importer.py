"""import_csv: a CSV file into a draft broadcast, in batches of short transactions.

What is guaranteed:
- file-level problems (empty, binary, too big, undecodable, NUL bytes, an unterminated quote, no
  phone column, a template parameter without a column, a header without rows) are found by a
  first, read-only pass over the file, before anything is written: the import is recorded as
  failed with the reason, ValidationFailed is raised, and no recipient or contact is touched;
- rows are then checked and written in batches, each in its own transaction together with the
  import's progress, so memory stays flat whatever the file size;
- if writing fails half-way (the database goes away, the broadcast starts meanwhile), the
  recipients this import added are removed again while the broadcast is still editable, and the
  import is recorded as failed;
- every row gets exactly one outcome: accepted, invalid (by reason), opted-out, test contact,
  duplicate (its number was accepted on an earlier row of this file) or already present (the
  number was a recipient before this import). Rows read = the sum of all of them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from broadcasts import audit
from broadcasts.actors import Actor
from broadcasts.csv_template import ColumnMap, match_columns
from broadcasts.db import transaction
from broadcasts.enums import ImportStatus
from broadcasts.errors import BroadcastBotError, ValidationFailed
from broadcasts.imports import bulk
from broadcasts.imports.bulk import NO_CONTACT
from broadcasts.imports.phones import calling_code, normaliser, valid_region
from broadcasts.imports.reader import (
    CsvFormat,
    FileError,
    file_size,
    records,
    seekable_copy,
    sniff,
    too_large,
)
from broadcasts.imports.report import MAX_REPORT_ROWS, ErrorReport
from broadcasts.imports.rows import EXCLUDED_REASONS, Rejected, Row, RowChecker
from broadcasts.lifecycle import ensure_editable
from broadcasts.metrics import Counts, bump
from broadcasts.models import Broadcast, Import, Template, utcnow
from broadcasts.service import get_broadcast

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
SOURCE_CSV = "csv"


@dataclass(frozen=True)
class ImportSummary:
    """What happened to a file, as stored on its Import row."""

    import_id: int
    broadcast_id: str | None
    filename: str | None
    status: str
    rows: int
    accepted: int
    invalid: int
    duplicates: int
    already_present: int
    opted_out: int
    test_excluded: int
    invalid_by_reason: dict[str, int]
    encoding: str | None
    delimiter: str | None
    region: str | None
    error: str | None = None
    error_report_csv: str | None = field(default=None, repr=False)
    assume_international: bool = False
    # Accepted rows per calling code, most first ({"+44": 120, "+1": 3}).
    accepted_by_country: dict[str, int] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        """Rows listed in the error report (invalid, duplicate, opted-out, test)."""
        return self.invalid + self.duplicates + self.opted_out + self.test_excluded

    def as_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "broadcast_id": self.broadcast_id,
            "filename": self.filename,
            "status": self.status,
            "rows": self.rows,
            "accepted": self.accepted,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "already_present": self.already_present,
            "opted_out": self.opted_out,
            "test_excluded": self.test_excluded,
            "invalid_by_reason": dict(sorted(self.invalid_by_reason.items())),
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "region": self.region,
            "assume_international": self.assume_international,
            "accepted_by_country": dict(self.accepted_by_country),
            "error": self.error,
            "report_rows": min(self.rejected, MAX_REPORT_ROWS),
        }

    @classmethod
    def of(cls, row: Import) -> ImportSummary:
        return cls(
            import_id=row.id,
            broadcast_id=row.broadcast_id,
            filename=row.filename,
            status=row.status,
            rows=row.rows_read,
            accepted=row.accepted,
            invalid=row.invalid,
            duplicates=row.duplicates,
            already_present=row.already_present,
            opted_out=row.opted_out,
            test_excluded=row.test_excluded,
            invalid_by_reason={k: int(v) for k, v in (row.invalid_by_reason or {}).items()},
            encoding=row.encoding,
            delimiter=row.delimiter,
            region=row.region,
            error=row.error,
            error_report_csv=row.error_report,
            assume_international=bool(row.assume_international),
            accepted_by_country=_most_first(row.accepted_by_country or {}),
        )


def _most_first(counts: dict[str, Any]) -> dict[str, int]:
    return dict(sorted(((k, int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class _Tally:
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    already_present: int = 0
    opted_out: int = 0
    test_excluded: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    countries: Counter[str] = field(default_factory=Counter)

    def values(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows,
            "accepted": self.accepted,
            "invalid": sum(self.invalid.values()),
            "duplicates": self.duplicates,
            "already_present": self.already_present,
            "opted_out": self.opted_out,
            "test_excluded": self.test_excluded,
            "invalid_by_reason": dict(self.invalid),
            "accepted_by_country": dict(self.countries),
        }


def import_csv(
    sessions: sessionmaker[Session],
    broadcast_ref: str,
    source: BinaryIO,
    *,
    filename: str,
    region: str | None,
    by: Actor,
    slack_file_id: str | None = None,
    max_bytes: int | None = None,
    batch_size: int = 5000,
    assume_international: bool = False,
) -> ImportSummary:
    """Import a CSV (phone_number + template parameter columns) into a draft broadcast.

    `region` is the default region for numbers written without a country code (None: every
    number needs one). The caller resolves it (per-import option, else the setting).
    `assume_international` reads numbers without `+` as international ones whose `+` was lost
    (see broadcasts.imports.phones.normalise_phone); otherwise they are refused. Importing the
    same `slack_file_id` again returns the earlier summary without reading the file (after a
    failed import of it, the file is imported afresh).
    """
    if region is not None:
        region = region.strip().upper()
        if not valid_region(region):
            raise ValidationFailed(
                f"'{region}' is not a region phonenumbers knows; use a two-letter country code "
                "such as GB or US.",
                field="region",
            )
    limit = max_bytes or DEFAULT_MAX_BYTES
    started = _start(
        sessions, broadcast_ref, filename, region, by, slack_file_id, assume_international
    )
    if isinstance(started, ImportSummary):
        return started
    import_id, broadcast_id, template = started
    file, owned = source, False
    try:
        file, owned = seekable_copy(source, limit)
        fmt, columns = check_file(file, template, limit)
    except BaseException as exc:
        reason = str(exc) if isinstance(exc, BroadcastBotError) else "the file could not be read"
        _fail(sessions, import_id, broadcast_id, reason, undo=False)
        if owned:
            file.close()
        raise
    try:
        _record(sessions, import_id, encoding=fmt.encoding, delimiter=fmt.delimiter)
        normalise = normaliser(region, assume_international=assume_international)
        checker = RowChecker(columns, template, normalise)
        tally, report = _write(sessions, file, fmt, checker, broadcast_id, import_id, batch_size)
    except BaseException as exc:
        reason = str(exc) if isinstance(exc, BroadcastBotError) else "the import stopped"
        log.exception("import %s of %s failed", import_id, broadcast_id)
        _fail(sessions, import_id, broadcast_id, reason, undo=True)
        raise
    finally:
        if owned:
            file.close()
    try:
        return _finish(sessions, import_id, broadcast_id, tally, report.text(), by)
    finally:
        report.close()


def _start(
    sessions: sessionmaker[Session],
    ref: str,
    filename: str,
    region: str | None,
    by: Actor,
    slack_file_id: str | None,
    assume_international: bool,
) -> ImportSummary | tuple[int, str, Template]:
    """Record the import as running, or return the earlier summary of the same Slack file."""
    for _ in range(2):
        earlier = _earlier(sessions, slack_file_id) if slack_file_id else None
        if earlier is not None:
            return earlier
        try:
            with transaction(sessions) as session:
                broadcast = get_broadcast(session, ref)
                ensure_editable(broadcast.name, broadcast.status)
                row = Import(
                    broadcast_id=broadcast.id,
                    source=SOURCE_CSV,
                    status=ImportStatus.RUNNING,
                    filename=filename[:255],
                    slack_file_id=slack_file_id,
                    region=region,
                    assume_international=assume_international,
                    created_by=by.id,
                )
                session.add(row)
                session.flush()
                template = session.get(Template, broadcast.template_id)
                assert template is not None
                session.expunge(template)
                return row.id, broadcast.id, template
        except IntegrityError:
            continue  # the same Slack file started meanwhile: report that one
    raise ValidationFailed("This file is being imported already.", field="file")


def _earlier(sessions: sessionmaker[Session], slack_file_id: str) -> ImportSummary | None:
    with transaction(sessions) as session:
        row = session.scalar(select(Import).where(Import.slack_file_id == slack_file_id))
        if row is None:
            return None
        if row.status == ImportStatus.DONE:
            return ImportSummary.of(row)
        if row.status == ImportStatus.FAILED:
            # Try again: a file-level problem will be found again, a passing one will not.
            row.slack_file_id = None
            return None
    raise ValidationFailed("This file is being imported already.", field="file")


def check_file(
    file: BinaryIO, template: Template | None, limit: int
) -> tuple[CsvFormat, ColumnMap]:
    """Everything that would stop the import as a whole, found before anything is written."""
    size = file_size(file)
    if size > limit:
        raise too_large(limit)
    if size == 0:
        raise FileError("The file is empty.")
    fmt = sniff(file)
    columns: ColumnMap | None = None
    has_rows = False
    for _line, cells in nonblank(records(file, fmt)):
        if columns is None:
            columns = match_columns(cells, template)
        else:
            has_rows = True
    if columns is None:
        raise FileError("The file has no header and no rows.")
    if not has_rows:
        raise FileError("The file has a header but no rows.")
    return fmt, columns


def nonblank(items: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    """Records with some content (blank lines and rows of empty cells are skipped)."""
    for line, cells in items:
        if cells and (cells[0].strip() or "".join(cells).strip()):
            yield line, cells


def _write(
    sessions: sessionmaker[Session],
    file: BinaryIO,
    fmt: CsvFormat,
    checker: RowChecker,
    broadcast_id: str,
    import_id: int,
    batch_size: int,
) -> tuple[_Tally, ErrorReport]:
    """Check rows here while a writer thread stores the previous batch (one batch in flight).

    The database works while Python parses, so an import costs about the slower of the two, not
    their sum. Tally and report are touched by the writer only, one batch at a time.
    """
    tally = _Tally()
    report = ErrorReport(checker.columns.header)
    rows = nonblank(records(file, fmt))
    next(rows)  # the header, checked already
    check = checker.check
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") as writer:
        in_flight: Future[None] | None = None
        batch: list[Row | Rejected] = []
        try:
            for line, cells in rows:
                batch.append(check(line, cells))
                if len(batch) >= batch_size:
                    if in_flight is not None:
                        in_flight.result()
                    in_flight = writer.submit(
                        _flush, sessions, batch, tally, report, broadcast_id, import_id
                    )
                    batch = []
            if in_flight is not None:
                in_flight.result()
            _flush(sessions, batch, tally, report, broadcast_id, import_id)
        except BaseException:
            if in_flight is not None:
                in_flight.cancel()
                wait([in_flight])
            report.close()
            raise
    return tally, report


def _flush(
    sessions: sessionmaker[Session],
    batch: list[Row | Rejected],
    tally: _Tally,
    report: ErrorReport,
    broadcast_id: str,
    import_id: int,
) -> None:
    """Write one batch and the import's progress in one transaction; report rows in file order."""
    now = utcnow()
    with transaction(sessions) as session:
        broadcast = session.execute(
            select(Broadcast.name, Broadcast.status)
            .where(Broadcast.id == broadcast_id)
            .with_for_update()
        ).one()
        ensure_editable(broadcast.name, broadcast.status)
        bulk.relax_commit(session)
        first: dict[str, Row] = {}
        for row in batch:
            if isinstance(row, Row) and row.phone not in first:
                first[row.phone] = row
        # Rows with extra columns create or update their contact; the others are only looked up.
        states = bulk.upsert_contacts(
            session,
            [(r.phone, r.name, r.attributes) for r in first.values() if r.attributes],
            source="import",
            now=now,
        )
        states.update(bulk.find_contacts(session, [p for p in first if p not in states]))
        eligible = [p for p in first if not (p in states and states[p].excluded)]
        result = bulk.add_recipient_rows(
            session,
            broadcast_id,
            [(p, first[p].params, states[p].id if p in states else None) for p in eligible],
            import_id=import_id,
            now=now,
        )
        added = result.new
        bump(session, broadcast_id, Counts(total=len(added), pending=len(added)))
        # Numbers already in the broadcast: from an earlier batch of this file, or from before.
        earlier = {p for p, owner in result.existing.items() if owner == import_id}
        for row in batch:
            tally.rows += 1
            if isinstance(row, Rejected):
                tally.invalid[row.reason] += 1
                report.add(row.line, row.reason, row.detail, row.cells)
                continue
            state = states.get(row.phone, NO_CONTACT)
            if state.opted_out:
                tally.opted_out += 1
                report.add(row.line, "opted_out", EXCLUDED_REASONS["opted_out"], row.cells)
            elif state.is_test:
                tally.test_excluded += 1
                report.add(row.line, "test_contact", EXCLUDED_REASONS["test_contact"], row.cells)
            elif row.phone in earlier:
                tally.duplicates += 1
                report.add(
                    row.line, "duplicate", f"same number ({row.phone}) as an earlier row", row.cells
                )
            elif row.phone in added:
                tally.accepted += 1
                tally.countries[calling_code(row.phone)] += 1
                earlier.add(row.phone)
            else:
                tally.already_present += 1
        session.execute(update(Import).where(Import.id == import_id).values(**tally.values()))


def _record(sessions: sessionmaker[Session], import_id: int, **values: Any) -> None:
    with transaction(sessions) as session:
        session.execute(update(Import).where(Import.id == import_id).values(**values))


def _fail(
    sessions: sessionmaker[Session], import_id: int, broadcast_id: str, error: str, *, undo: bool
) -> None:
    """Mark the import failed; with `undo`, take back its recipients if the broadcast allows."""
    try:
        with transaction(sessions) as session:
            status = session.scalar(
                select(Broadcast.status).where(Broadcast.id == broadcast_id).with_for_update()
            )
            removed = 0
            if undo and status is not None:
                try:
                    ensure_editable(broadcast_id, status)
                    removed = bulk.delete_import_recipients(session, broadcast_id, import_id)
                except BroadcastBotError:
                    removed = 0  # sending started: what was added stays, and is counted
            if removed:
                bump(session, broadcast_id, Counts(total=-removed, pending=-removed))
            session.execute(
                update(Import)
                .where(Import.id == import_id)
                .values(
                    status=ImportStatus.FAILED,
                    error=error,
                    accepted=0 if removed else Import.accepted,
                    finished_at=utcnow(),
                )
            )
    except Exception:
        log.exception("could not record the failure of import %s", import_id)


def _finish(
    sessions: sessionmaker[Session],
    import_id: int,
    broadcast_id: str,
    tally: _Tally,
    report_csv: str | None,
    by: Actor,
) -> ImportSummary:
    with transaction(sessions) as session:
        session.execute(
            update(Import)
            .where(Import.id == import_id)
            .values(
                status=ImportStatus.DONE,
                error_report=report_csv,
                finished_at=utcnow(),
                **tally.values(),
            )
        )
        row = session.get(Import, import_id)
        assert row is not None
        session.refresh(row)
        summary = ImportSummary.of(row)
        audit.record(
            session,
            "broadcast.import",
            actor=by.id,
            via=by.via,
            broadcast_id=broadcast_id,
            **{k: v for k, v in summary.as_dict().items() if k not in {"broadcast_id"}},
        )
    log.info(
        "import %s into %s: %s rows, %s accepted, %s invalid",
        import_id,
        broadcast_id,
        summary.rows,
        summary.accepted,
        summary.invalid,
    )
    return summary
