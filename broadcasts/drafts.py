"""Editing a draft (or scheduled) broadcast: remove recipients, rename, change its template."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from broadcasts import audit, service
from broadcasts.actors import Actor
from broadcasts.csv_template import attribute_value, parameter_column
from broadcasts.enums import BroadcastStatus as S
from broadcasts.errors import NextStep, NotFoundError, ValidationFailed
from broadcasts.imports.phones import PHONE_REASONS, normalise_phone
from broadcasts.imports.rows import BODY_LIMIT
from broadcasts.lifecycle import ensure_editable
from broadcasts.metrics import repair_counters
from broadcasts.models import Broadcast, Contact, Import, Recipient
from broadcasts.templates import ensure_approved, find_template

CHUNK = 1000
EXAMPLES = 5
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


@dataclass(frozen=True)
class ImportLine:
    """One import of a broadcast, with how many of its recipients are still in it."""

    id: int
    source: str
    filename: str | None
    accepted: int
    remaining: int
    created_by: str | None

    @property
    def label(self) -> str:
        what = f"`{self.filename}`" if self.filename else self.source
        return f"#{self.id} {what}: {self.remaining:,} recipients"


def list_imports(session: Session, broadcast: Broadcast) -> list[ImportLine]:
    remaining = dict(
        session.execute(
            select(Recipient.import_id, func.count())
            .where(Recipient.broadcast_id == broadcast.id, Recipient.import_id.is_not(None))
            .group_by(Recipient.import_id)
        ).all()
    )
    rows = session.scalars(
        select(Import).where(Import.broadcast_id == broadcast.id).order_by(Import.id)
    )
    return [
        ImportLine(
            i.id, i.source, i.filename, i.accepted, int(remaining.get(i.id, 0)), i.created_by
        )
        for i in rows
    ]


def _editable(session: Session, ref: str) -> Broadcast:
    """The broadcast, locked until the edit commits, so a schedule firing or a Send pressed
    meanwhile starts it only after the edit (a row lock on PostgreSQL; SQLite writers queue)."""
    broadcast = service.get_broadcast(session, ref)
    session.execute(select(Broadcast.id).where(Broadcast.id == broadcast.id).with_for_update())
    session.refresh(broadcast)
    ensure_editable(broadcast.name, broadcast.status)
    return broadcast


@dataclass(frozen=True)
class Removal:
    removed: int
    not_found: list[str] = field(default_factory=list)


def _remove(session: Session, broadcast: Broadcast, condition: Any) -> int:
    result = session.execute(
        delete(Recipient)
        .where(Recipient.broadcast_id == broadcast.id, condition)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _after_removal(session: Session, broadcast: Broadcast) -> None:
    # Counters are recounted (one broadcast, an editing action, not a hot path) so they equal the
    # recipient rows whatever statuses the removed ones had.
    repair_counters(session, broadcast.id)
    session.refresh(broadcast)
    if broadcast.status == S.SCHEDULED and broadcast.total_count - broadcast.skipped_count <= 0:
        raise ValidationFailed(
            f"Broadcast '{broadcast.name}' is scheduled and would have no recipients left; "
            "unschedule it first.",
            field="recipients",
        )


def parse_phones(raw: Sequence[str], *, region: str | None = None) -> list[str]:
    """E.164 numbers from user text (one or more per item, split on commas, spaces, lines)."""
    found: list[str] = []
    bad: list[str] = []
    for item in raw:
        for token in item.replace(",", "\n").replace(";", "\n").splitlines():
            token = token.strip()
            if not token:
                continue
            phone, reason = normalise_phone(token, region)
            if phone is None:
                bad.append(f"{token!r} ({PHONE_REASONS.get(reason, reason)})")
            elif phone not in found:
                found.append(phone)
    if bad:
        shown = ", ".join(bad[:EXAMPLES]) + (
            f" and {len(bad) - EXAMPLES} more" if len(bad) > EXAMPLES else ""
        )
        raise ValidationFailed(f"Not a phone number: {shown}; nothing was removed.", field="phones")
    return found


def remove_recipients(
    session: Session,
    ref: str,
    *,
    by: Actor,
    phones: Sequence[str] = (),
    import_id: int | None = None,
    everyone: bool = False,
) -> Removal:
    """Remove recipients of a draft by number, by import (undoing it) or all of them."""
    ways = sum(1 for x in (bool(phones), import_id is not None, everyone) if x)
    if ways != 1:
        raise ValidationFailed(
            "Say which recipients to remove: some numbers, one import, or all.", field="phones"
        )
    broadcast = _editable(session, ref)
    not_found: list[str] = []
    detail: dict[str, Any] = {}
    if phones:
        present = set(
            session.scalars(
                select(Recipient.phone).where(
                    Recipient.broadcast_id == broadcast.id, Recipient.phone.in_(list(phones))
                )
            )
        )
        not_found = [p for p in phones if p not in present]
        if not present:
            raise NotFoundError(
                f"None of these numbers is a recipient of '{broadcast.name}': "
                + ", ".join(not_found[:EXAMPLES])
                + "."
            )
        removed = _remove(session, broadcast, Recipient.phone.in_(sorted(present)))
        detail = {"how": "phones", "phones": len(present), "not_found": len(not_found)}
    elif import_id is not None:
        record = session.get(Import, import_id)
        if record is None or record.broadcast_id != broadcast.id:
            raise NotFoundError(
                f"Broadcast '{broadcast.name}' has no import #{import_id}.",
                next_step=NextStep.LIST_IMPORTS,
                subject=broadcast.id[:8],
            )
        removed = _remove(session, broadcast, Recipient.import_id == import_id)
        if not removed:
            raise ValidationFailed(
                f"Import #{import_id} of '{broadcast.name}' has no recipients left to remove.",
                field="import",
            )
        detail = {"how": "import", "import_id": import_id, "filename": record.filename}
    else:
        removed = _remove(session, broadcast, Recipient.id.is_not(None))
        detail = {"how": "all"}
    _after_removal(session, broadcast)
    audit.record(
        session,
        "broadcast.remove_recipients",
        actor=by.id,
        via=by.via,
        broadcast_id=broadcast.id,
        removed=removed,
        **detail,
    )
    return Removal(removed, not_found)


@dataclass(frozen=True)
class Unfit:
    phone: str
    missing: str  # the CSV column the recipient has no value for, or why the value is refused


@dataclass
class Refit:
    """Recipients' parameters checked against a template."""

    fitting: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> new params
    unfit_ids: list[int] = field(default_factory=list)
    examples: list[Unfit] = field(default_factory=list)


def refit(session: Session, broadcast: Broadcast, template: Any) -> Refit:
    """Check every recipient's parameters against `template` (values from the recipient's
    parameters, or its contact's attributes, matched like CSV columns)."""
    names = [str(n) for n in template.parameter_names or []]
    body = template.body_text or ""
    base = len(PLACEHOLDER.sub("", body))
    uses = {n: 0 for n in names}
    for found in PLACEHOLDER.findall(body):
        if found in uses:
            uses[found] += 1
    result = Refit()
    query = (
        select(Recipient, Contact.attributes)
        .outerjoin(Contact, Contact.id == Recipient.contact_id)
        .where(Recipient.broadcast_id == broadcast.id)
        .order_by(Recipient.id)
        .execution_options(yield_per=CHUNK)
    )
    for recipient, attributes in session.execute(query):
        params = dict(recipient.params or {})
        new = dict(params)
        problem = None
        length = base
        for name in names:
            value = params.get(name)
            if value in (None, ""):
                value = attribute_value(params, template, name)
            if value in (None, "") and attributes:
                value = attribute_value(attributes, template, name)
            if value in (None, ""):
                problem = f"no {parameter_column(template, name)}"
                break
            new[name] = str(value)
            length += len(str(value)) * uses[name]
        if problem is None and length > BODY_LIMIT:
            problem = f"a message of {length} characters (WhatsApp allows {BODY_LIMIT})"
        if problem is None:
            if new != params:
                result.fitting[recipient.id] = new
            continue
        result.unfit_ids.append(recipient.id)
        if len(result.examples) < EXAMPLES:
            result.examples.append(Unfit(recipient.phone, problem))
    return result


@dataclass(frozen=True)
class EditResult:
    broadcast: Broadcast
    changes: list[str]
    removed_unfit: int = 0


def edit_draft(
    session: Session,
    ref: str,
    *,
    by: Actor,
    name: str | None = None,
    template_ref: str | int | None = None,
    drop_unfit: bool = False,
) -> EditResult:
    """Rename a draft and/or change its template, all or nothing.

    A new template must be approved and of the same configuration; every recipient is checked
    against its parameters. Recipients that no longer fit make the change fail with examples,
    unless `drop_unfit` removes them.
    """
    broadcast = _editable(session, ref)
    changes: list[str] = []
    removed = 0
    if name is not None:
        clean = service.clean_name(name)
        if clean != broadcast.name:
            changes.append(f"renamed from '{broadcast.name}' to '{clean}'")
            broadcast.name = clean
    if template_ref is not None and str(template_ref).strip():
        template = find_template(session, broadcast.config, template_ref)
        ensure_approved(template)
        if template.id != broadcast.template_id:
            checked = refit(session, broadcast, template)
            if checked.unfit_ids and not drop_unfit:
                examples = "; ".join(f"{u.phone} has {u.missing}" for u in checked.examples)
                raise ValidationFailed(
                    f"{len(checked.unfit_ids):,} recipients do not fit template "
                    f"'{template.name}' ({examples}). Choose to remove the recipients that do "
                    "not fit, or upload a CSV with those columns; nothing was changed.",
                    field="template",
                    next_step=NextStep.DROP_UNFIT,
                )
            rows = [{"id": i, "params": p} for i, p in checked.fitting.items()]
            for start in range(0, len(rows), CHUNK):
                session.execute(
                    update(Recipient).execution_options(synchronize_session=False),
                    rows[start : start + CHUNK],
                )
            if checked.unfit_ids:
                for start in range(0, len(checked.unfit_ids), CHUNK):
                    chunk = checked.unfit_ids[start : start + CHUNK]
                    removed += _remove(session, broadcast, Recipient.id.in_(chunk))
                _after_removal(session, broadcast)
            old = broadcast.template
            changes.append(
                f"template changed from `{old.name}` ({old.language}) to "
                f"`{template.name}` ({template.language})"
            )
            if removed:
                changes.append(f"{removed:,} recipients that did not fit were removed")
            broadcast.template_id = template.id
            session.flush()
            session.refresh(broadcast)
    if not changes:
        raise ValidationFailed("Nothing to change: give a new name or another template.")
    audit.record(
        session,
        "broadcast.edit",
        actor=by.id,
        via=by.via,
        broadcast_id=broadcast.id,
        name=broadcast.name,
        template=broadcast.template.name,
        removed_unfit=removed,
    )
    return EditResult(broadcast, changes, removed)
