"""The per-recipient report of a broadcast: one CSV row per recipient, safe for spreadsheets."""

from __future__ import annotations

import csv
from datetime import datetime
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcasts.imports.report import safe_cell
from broadcasts.models import Broadcast, Recipient

COLUMNS = (
    "phone_number",
    "status",
    "error_code",
    "error_reason",
    "error_detail",
    "attempts",
    "sent_at",
    "delivered_at",
    "read_at",
    "responded_at",
    "opted_out_at",
    "failed_at",
    "wamid",
    "wa_id",
)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def write_recipient_report(session: Session, broadcast: Broadcast, out: TextIO) -> int:
    """Write every recipient (streamed, in id order) with its parameters; returns the count."""
    names = [str(n) for n in broadcast.template.parameter_names or []]
    writer = csv.writer(out, lineterminator="\r\n")
    # Every cell is neutralised: wamid and wa_id come from webhooks, names from operators.
    writer.writerow([safe_cell(c) for c in (*COLUMNS, *(f"param_{n}" for n in names))])
    rows = 0
    query = (
        select(Recipient)
        .where(Recipient.broadcast_id == broadcast.id)
        .order_by(Recipient.id)
        .execution_options(yield_per=2000)
    )
    for r in session.scalars(query):
        params = r.params or {}
        cells = [
            r.phone,
            r.status,
            "" if r.error_code is None else str(r.error_code),
            r.error_title or "",
            r.error_detail or "",
            str(r.attempts),
            _when(r.sent_at),
            _when(r.delivered_at),
            _when(r.read_at),
            _when(r.responded_at),
            _when(r.opted_out_at),
            _when(r.failed_at),
            r.wamid or "",
            r.wa_id or "",
            *(str(params.get(n, "")) for n in names),
        ]
        writer.writerow([safe_cell(str(c)) for c in cells])
        rows += 1
    return rows
