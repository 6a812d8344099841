"""The contact list: upserts (Kapso sync, files, inbound), test and opt-out flags, selection."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from broadcasts import audit
from broadcasts.actors import Actor
from broadcasts.csv_template import attribute_value, parameter_column
from broadcasts.enums import ImportStatus
from broadcasts.errors import NextStep, NotFoundError, ValidationFailed
from broadcasts.imports.phones import PHONE_REASONS, normalise_phone
from broadcasts.lifecycle import ensure_editable
from broadcasts.models import Contact, Import, Template, utcnow
from broadcasts.recipients import NewRecipient, insert_recipients
from broadcasts.service import get_broadcast

CHUNK = 500

USER_ID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")


@dataclass(frozen=True)
class ContactData:
    """A contact as a source describes it; phone already in E.164."""

    phone: str
    wa_id: str | None = None
    name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    is_test: bool = False
    source: str = "import"


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int


def upsert_contacts(session: Session, contacts: Iterable[ContactData]) -> UpsertResult:
    """Create or update contacts by phone: attributes merged (new values win), a name or wa_id
    filled in when known, is_test only ever switched on here. Re-running changes nothing twice."""
    created = updated = 0
    for chunk in _chunks(contacts, CHUNK):
        latest: dict[str, ContactData] = {}
        for data in chunk:
            latest[data.phone] = _merge(latest.get(data.phone), data)
        existing = {
            c.phone: c
            for c in session.scalars(select(Contact).where(Contact.phone.in_(list(latest))))
        }
        for phone, data in latest.items():
            contact = existing.get(phone)
            if contact is None:
                session.add(
                    Contact(
                        phone=phone,
                        wa_id=data.wa_id,
                        name=data.name,
                        attributes=dict(data.attributes),
                        is_test=data.is_test,
                        source=data.source,
                    )
                )
                created += 1
                continue
            merged = {**(contact.attributes or {}), **data.attributes}
            changes = {
                "attributes": merged,
                "wa_id": data.wa_id or contact.wa_id,
                "name": data.name or contact.name,
                "is_test": contact.is_test or data.is_test,
            }
            if any(getattr(contact, k) != v for k, v in changes.items()):
                for key, value in changes.items():
                    setattr(contact, key, value)
                updated += 1
        session.flush()
    return UpsertResult(created=created, updated=updated)


def _merge(old: ContactData | None, new: ContactData) -> ContactData:
    if old is None:
        return new
    return ContactData(
        phone=new.phone,
        wa_id=new.wa_id or old.wa_id,
        name=new.name or old.name,
        attributes={**old.attributes, **new.attributes},
        is_test=old.is_test or new.is_test,
        source=old.source,
    )


def _chunks(items: Iterable[ContactData], size: int) -> Iterator[list[ContactData]]:
    chunk: list[ContactData] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def eligible_contacts_query(search: str | None = None) -> Select[Contact]:
    """Contacts a broadcast may go to: not test/sandbox contacts, not opted out, with a number
    (a template send needs one; contacts known only by user id are reached by replies)."""
    query = select(Contact).where(
        Contact.is_test.is_(False), Contact.opted_out_at.is_(None), Contact.phone.is_not(None)
    )
    return _searched(query, search)


def _searched(query: Select[Contact], search: str | None) -> Select[Contact]:
    text = (search or "").strip()
    if not text:
        return query
    like = f"%{text.lower()}%"
    digits = "".join(c for c in text if c.isdigit())
    conditions = [func.lower(Contact.name).like(like), Contact.wa_id == text]
    if digits:
        conditions.append(Contact.phone.like(f"%{digits}%"))
    return query.where(or_(*conditions))


def count_eligible(session: Session, search: str | None = None) -> int:
    query = eligible_contacts_query(search).with_only_columns(func.count(Contact.id))
    return int(session.scalar(query) or 0)


def list_contacts(
    session: Session, *, search: str | None = None, eligible_only: bool = False, limit: int = 50
) -> list[Contact]:
    query = eligible_contacts_query(search) if eligible_only else _searched(select(Contact), search)
    return list(session.scalars(query.order_by(Contact.id).limit(limit)))


def find_contact(session: Session, ref: str) -> Contact | None:
    """A contact by phone (any format with a country code), wa_id or business-scoped user id."""
    text = ref.strip()
    if USER_ID.fullmatch(text):  # `US.1349…`: a business-scoped user id, not a number
        return session.scalar(select(Contact).where(Contact.user_id == text))
    # A lookup gives no number a country, so digits without + may be read as international.
    phone, _ = normalise_phone(text, None, assume_international=True)
    if phone is not None:
        found = session.scalar(select(Contact).where(Contact.phone == phone))
        if found is not None:
            return found
    return session.scalar(select(Contact).where(Contact.wa_id == text.lstrip("+")))


def _phone_of(ref: str) -> str:
    # Refs here are phones or WhatsApp ids, and a wa_id is the number with its country code.
    phone, reason = normalise_phone(ref, None, assume_international=True)
    if phone is None:
        raise ValidationFailed(
            f"'{ref}' is not a phone number with a country code ({PHONE_REASONS[reason]}).",
            field="phone",
        )
    return phone


def set_opt_out(
    session: Session, phone_or_wa_id: str, opted_out: bool, reason: str | None = None
) -> Contact:
    """Record that a number opted out (STOP, error 131050…) or back in; creates the contact if
    needed so later imports and selections leave the number out."""
    contact = find_contact(session, phone_or_wa_id)
    if contact is None:
        contact = Contact(phone=_phone_of(phone_or_wa_id), source="opt-out", attributes={})
        if phone_or_wa_id.strip().lstrip("+").isdigit():
            contact.wa_id = phone_or_wa_id.strip().lstrip("+")
        session.add(contact)
    if opted_out:
        if contact.opted_out_at is None:
            contact.opted_out_at = utcnow()
        contact.opt_out_reason = (reason or "opted out")[:255]
    else:
        contact.opted_out_at = None
        contact.opt_out_reason = None
    session.flush()
    return contact


def mark_test(session: Session, phone_or_wa_id: str, is_test: bool = True) -> Contact:
    """Flag a number as a test contact (never part of a broadcast), creating it if needed."""
    contact = find_contact(session, phone_or_wa_id)
    if contact is None:
        contact = Contact(phone=_phone_of(phone_or_wa_id), source="manual", attributes={})
        session.add(contact)
    contact.is_test = is_test
    session.flush()
    return contact


@dataclass(frozen=True)
class AddContactsSummary:
    selected: int
    added: int
    already_present: int
    excluded_test: int
    excluded_opted_out: int
    missing_params: int
    not_found: list[int]
    missing_examples: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "selected": self.selected,
            "added": self.added,
            "already_present": self.already_present,
            "excluded_test": self.excluded_test,
            "excluded_opted_out": self.excluded_opted_out,
            "missing_params": self.missing_params,
            "not_found": self.not_found,
            "missing_examples": self.missing_examples,
        }


def add_contacts_to_broadcast(
    session: Session,
    broadcast_ref: str,
    *,
    ids: list[int] | None = None,
    search: str | None = None,
    all_eligible: bool = False,
    by: Actor,
) -> AddContactsSummary:
    """Add contacts as recipients, taking template parameters from their attributes.

    Test and opted-out contacts are never added, whichever way they were selected; contacts
    lacking an attribute for a template parameter are counted and left out.
    """
    chosen = sum(1 for x in (ids, search, all_eligible) if x)
    if chosen != 1:
        raise ValidationFailed("Choose contacts one way: by ids, by a search, or all eligible.")
    broadcast = get_broadcast(session, broadcast_ref)
    ensure_editable(broadcast.name, broadcast.status)
    template = session.get(Template, broadcast.template_id)
    assert template is not None
    record = Import(
        broadcast_id=broadcast.id,
        source="contacts",
        status=ImportStatus.RUNNING,
        filename=f"search: {search}"[:255] if search else None,
        created_by=by.id,
    )
    session.add(record)
    session.flush()
    query = select(Contact)
    not_found: list[int] = []
    if ids:
        wanted = sorted(set(ids))
        query = query.where(Contact.id.in_(wanted))
        present = set(session.scalars(select(Contact.id).where(Contact.id.in_(wanted))))
        not_found = [i for i in wanted if i not in present]
    elif search:
        query = _searched(query, search)
    selected = added = excluded_test = excluded_out = missing = 0
    examples: list[str] = []
    batch: list[NewRecipient] = []

    def flush() -> int:
        count = insert_recipients(session, broadcast, batch, import_id=record.id) if batch else 0
        batch.clear()
        return count

    for contact in session.scalars(query.order_by(Contact.id).execution_options(yield_per=CHUNK)):
        selected += 1
        if contact.is_test:
            excluded_test += 1
            continue
        if contact.opted_out_at is not None:
            excluded_out += 1
            continue
        if contact.phone is None:  # known only by user id: no number to send a template to
            missing += 1
            if len(examples) < 5:
                examples.append(f"{contact.username or contact.user_id} has no phone number")
            continue
        params: dict[str, Any] = {}
        lacking = None
        for name in template.parameter_names:
            value = attribute_value(contact.attributes or {}, template, str(name))
            if value is None:
                lacking = parameter_column(template, str(name))
                break
            params[str(name)] = value
        if lacking is not None:
            missing += 1
            if len(examples) < 5:
                examples.append(f"{contact.phone} has no {lacking}")
            continue
        batch.append(NewRecipient(contact.phone, params, contact.id))
        if len(batch) >= CHUNK:
            added += flush()
    added += flush()
    eligible = selected - excluded_test - excluded_out - missing
    summary = AddContactsSummary(
        selected=selected,
        added=added,
        already_present=eligible - added,
        excluded_test=excluded_test,
        excluded_opted_out=excluded_out,
        missing_params=missing,
        not_found=not_found,
        missing_examples=examples,
    )
    record.status = ImportStatus.DONE
    record.rows_read = selected
    record.accepted = added
    record.already_present = summary.already_present
    record.test_excluded = excluded_test
    record.opted_out = excluded_out
    record.invalid = missing
    record.invalid_by_reason = {"param_missing": missing} if missing else {}
    record.finished_at = utcnow()
    audit.record(
        session,
        "broadcast.add_contacts",
        actor=by.id,
        via=by.via,
        broadcast_id=broadcast.id,
        how="ids" if ids else "search" if search else "all_eligible",
        **{k: v for k, v in summary.as_dict().items() if k != "missing_examples"},
    )
    return summary


def get_contact(session: Session, ref: str) -> Contact:
    found = find_contact(session, ref)
    if found is None and ref.strip().isdigit():
        found = session.get(Contact, int(ref.strip()))
    if found is None:
        raise NotFoundError(f"No contact '{ref}'.", next_step=NextStep.LIST_CONTACTS)
    return found
