"""import_csv: a CSV file into a draft broadcast, all or nothing, in one transaction.

What is guaranteed:
- file-level problems (empty, binary, too big, undecodable, NUL bytes, an unterminated quote, no
  phone column, a template parameter without a column, a header without rows) are found by a
  first, read-only pass over the file, before anything is written: the import is recorded as
  failed with the reason, ValidationFailed is raised, and no recipient or contact is touched;
- rows are then checked in chunks (by worker processes when the file is large) and staged in the
  database as they come, so memory stays flat whatever the file size; contacts, recipients,
  counters and the import's tally are written by set-based statements in the same transaction;
- if anything fails on the way (the database goes away, a worker dies), that transaction rolls
  back: no recipient or contact of the file is left, and the import is recorded as failed;
- every row gets exactly one outcome: accepted, invalid (by reason), opted-out, test contact,
  duplicate (its number was accepted on an earlier row of this file) or already present (the
  number was a recipient before this import). Rows read = the sum of all of them.
"""

from __future__ import annotations

import heapq
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, BinaryIO

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from broadcasts import audit, recipient_status
from broadcasts.actors import Actor
from broadcasts.csv_template import ColumnMap, match_columns
from broadcasts.db import transaction
from broadcasts.enums import ImportStatus
from broadcasts.errors import BroadcastBotError, ValidationFailed
from broadcasts.imports import bulk
from broadcasts.imports.chunks import (
    Chunk,
    RejectedRow,
    local_chunks,
    parallel_chunks,
    worker_count,
)
from broadcasts.imports.chunks import nonblank as nonblank  # re-exported for contacts_file
from broadcasts.imports.phones import by_country, normaliser, valid_region
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
from broadcasts.imports.rows import EXCLUDED_REASONS, RowChecker
from broadcasts.lifecycle import ensure_editable
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
    source_file_id: str | None = None,
    max_bytes: int | None = None,
    batch_size: int = 5000,
    assume_international: bool = False,
) -> ImportSummary:
    """Import a CSV (phone_number + template parameter columns) into a draft broadcast.

    `region` is the default region for numbers written without a country code (None: every
    number needs one). The caller resolves it (per-import option, else the setting).
    `assume_international` reads numbers without `+` as international ones whose `+` was lost
    (see broadcasts.imports.phones.normalise_phone); otherwise they are refused. Importing the
    same `source_file_id` again returns the earlier summary without reading the file (after a
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
        sessions, broadcast_ref, filename, region, by, source_file_id, assume_international
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
        tally, report = _write(
            sessions,
            file,
            fmt,
            checker,
            template,
            region,
            broadcast_id,
            import_id,
            batch_size,
            assume_international=assume_international,
        )
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
    source_file_id: str | None,
    assume_international: bool,
) -> ImportSummary | tuple[int, str, Template]:
    """Record the import as running, or return the earlier summary of the same Slack file."""
    for _ in range(2):
        earlier = _earlier(sessions, source_file_id) if source_file_id else None
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
                    source_file_id=source_file_id,
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


def _earlier(sessions: sessionmaker[Session], source_file_id: str) -> ImportSummary | None:
    with transaction(sessions) as session:
        row = session.scalar(select(Import).where(Import.source_file_id == source_file_id))
        if row is None:
            return None
        if row.status == ImportStatus.DONE:
            return ImportSummary.of(row)
        if row.status == ImportStatus.FAILED:
            # Try again: a file-level problem will be found again, a passing one will not.
            row.source_file_id = None
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


def _write(
    sessions: sessionmaker[Session],
    file: BinaryIO,
    fmt: CsvFormat,
    checker: RowChecker,
    template: Template,
    region: str | None,
    broadcast_id: str,
    import_id: int,
    batch_size: int,
    *,
    assume_international: bool,
) -> tuple[_Tally, ErrorReport]:
    """Check every row and load the accepted ones in one transaction; report rows in file order.

    Large files are checked by worker processes while this one stages their chunks, so an
    import costs about the slower of the two. The broadcast stays locked for the whole load:
    it cannot start sending with half a file in it.
    """
    tally = _Tally()
    rejected: list[RejectedRow] = []  # the first MAX_REPORT_ROWS, for the report
    workers = worker_count(file_size(file))
    with ExitStack() as stack:
        session = stack.enter_context(transaction(sessions))
        broadcast = session.execute(
            select(Broadcast.name, Broadcast.status)
            .where(Broadcast.id == broadcast_id)
            .with_for_update()
        ).one()
        ensure_editable(broadcast.name, broadcast.status)
        postgres = session.get_bind().dialect.name == "postgresql"
        chunks: Iterator[Chunk]
        if workers:
            path = stack.enter_context(_named_copy(file))
            chunks = parallel_chunks(
                path,
                fmt,
                checker.columns,
                template,
                region,
                batch_size,
                postgres,
                workers,
                assume_international=assume_international,
            )
        else:
            chunks = local_chunks(file, fmt, checker, batch_size, postgres)
        stack.enter_context(closing(chunks))  # type: ignore[type-var]
        load = bulk.Load(session, broadcast_id, import_id, now=utcnow())
        for chunk in chunks:
            tally.rows += chunk.rows
            for item in chunk.rejected:
                tally.invalid[item[1]] += 1
                if len(rejected) < MAX_REPORT_ROWS:
                    rejected.append(item)
            load.stage(chunk.staged, chunk.payload, with_attributes=chunk.with_attributes)
        outcome = load.finish(MAX_REPORT_ROWS)
        tally.accepted = outcome.accepted
        tally.duplicates = outcome.counts.get(bulk.DUPLICATE, 0)
        tally.opted_out = outcome.counts.get(bulk.OPTED_OUT, 0)
        tally.test_excluded = outcome.counts.get(bulk.TEST_CONTACT, 0)
        tally.already_present = outcome.counts.get(bulk.ALREADY_PRESENT, 0)
        tally.countries.update(by_country(outcome.accepted_by_prefix))
        recipient_status.count_added(session, broadcast_id, outcome.accepted)
        session.execute(update(Import).where(Import.id == import_id).values(**tally.values()))
    return tally, _report(file, fmt, checker.columns.header, tally, rejected, outcome.reported)


@contextmanager
def _named_copy(file: BinaryIO) -> Iterator[str]:
    """A path worker processes can open: the file's own, or a temporary copy of it."""
    name = getattr(file, "name", None)
    if isinstance(name, str) and os.path.isfile(name):
        yield name
        return
    with tempfile.NamedTemporaryFile(prefix="import-", suffix=".csv") as copy:
        file.seek(0)
        shutil.copyfileobj(file, copy, 1024 * 1024)
        copy.flush()
        yield copy.name


_DETAILS = {
    bulk.OPTED_OUT: EXCLUDED_REASONS["opted_out"],
    bulk.TEST_CONTACT: EXCLUDED_REASONS["test_contact"],
}


def _report(
    file: BinaryIO,
    fmt: CsvFormat,
    header: Sequence[str],
    tally: _Tally,
    rejected: list[RejectedRow],
    excluded: list[tuple[int, str, str]],
) -> ErrorReport:
    """Invalid rows (from checking) and excluded rows (from the load), merged in line order, up
    to MAX_REPORT_ROWS, with their cells read again from the file as the report is written."""
    report = ErrorReport(header)
    try:
        merged = list(
            islice(
                heapq.merge(
                    rejected,
                    ((line, outcome, _detail(outcome, phone)) for line, phone, outcome in excluded),
                ),
                MAX_REPORT_ROWS,
            )
        )
        if merged:
            # Both lists and the file are in line order, and every listed line is a record.
            pending = iter(merged)
            wanted = next(pending)
            for line, cells in records(file, fmt):
                if line == wanted[0]:
                    report.add(line, wanted[1], wanted[2], cells)
                    next_item = next(pending, None)
                    if next_item is None:
                        break
                    wanted = next_item
        total = sum(tally.invalid.values()) + tally.duplicates + tally.opted_out
        report.left_out += total + tally.test_excluded - len(merged)
    except BaseException:
        report.close()
        raise
    return report


def _detail(outcome: str, phone: str) -> str:
    return _DETAILS.get(outcome) or f"same number ({phone}) as an earlier row"


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
                recipient_status.count_removed(session, broadcast_id, removed)
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
