"""A CSV file into the contact list (not into a broadcast): every column but the phone is kept
as an attribute, which later fills template parameters when contacts are added to a broadcast."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy.orm import Session, sessionmaker

from broadcasts.contacts import ContactData, upsert_contacts
from broadcasts.db import transaction
from broadcasts.errors import ValidationFailed
from broadcasts.imports.importer import DEFAULT_MAX_BYTES, check_file, nonblank
from broadcasts.imports.phones import normaliser, valid_region
from broadcasts.imports.reader import records, seekable_copy
from broadcasts.imports.report import ErrorReport
from broadcasts.imports.rows import Rejected, RowChecker


@dataclass(frozen=True)
class ContactImportSummary:
    rows: int
    created: int
    updated: int
    invalid: int
    invalid_by_reason: dict[str, int]
    encoding: str
    delimiter: str
    region: str | None
    error_report_csv: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "invalid": self.invalid,
            "invalid_by_reason": dict(sorted(self.invalid_by_reason.items())),
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "region": self.region,
        }


def import_contacts(
    sessions: sessionmaker[Session],
    source: BinaryIO,
    *,
    region: str | None,
    is_test: bool = False,
    max_bytes: int | None = None,
    batch_size: int = 2000,
    assume_international: bool = False,
) -> ContactImportSummary:
    """Upsert the contacts of a CSV (phone column + any attributes), batch by batch."""
    if region is not None:
        region = region.strip().upper()
        if not valid_region(region):
            raise ValidationFailed(f"'{region}' is not a known region (e.g. GB, US).")
    file, owned = seekable_copy(source, max_bytes or DEFAULT_MAX_BYTES)
    try:
        fmt, columns = check_file(file, None, max_bytes or DEFAULT_MAX_BYTES)
        normalise = normaliser(region, assume_international=assume_international)
        checker = RowChecker(columns, None, normalise)
        report = ErrorReport(columns.header)
        invalid: Counter[str] = Counter()
        rows = created = updated = 0
        batch: list[ContactData] = []

        def flush() -> None:
            nonlocal created, updated
            with transaction(sessions) as session:
                result = upsert_contacts(session, batch)
            created += result.created
            updated += result.updated
            batch.clear()

        items = nonblank(records(file, fmt))
        next(items)
        for line, cells in items:
            rows += 1
            outcome = checker.check(line, cells)
            if isinstance(outcome, Rejected):
                invalid[outcome.reason] += 1
                report.add(line, outcome.reason, outcome.detail, cells)
                continue
            batch.append(
                ContactData(
                    phone=outcome.phone,
                    name=outcome.name,
                    attributes=dict(outcome.attributes),
                    is_test=is_test,
                    source="import",
                )
            )
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        text = report.text()
        report.close()
    finally:
        if owned:
            file.close()
    return ContactImportSummary(
        rows=rows,
        created=created,
        updated=updated,
        invalid=sum(invalid.values()),
        invalid_by_reason=dict(invalid),
        encoding=fmt.encoding,
        delimiter=fmt.delimiter,
        region=region,
        error_report_csv=text,
    )
