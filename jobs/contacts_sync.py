"""`contacts sync`: the number's existing WhatsApp contacts (Kapso's list) into our contacts."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from broadcasts.configs import get_config
from broadcasts.contacts import ContactData, upsert_contacts
from broadcasts.db import transaction
from broadcasts.enums import Provider
from jobs.runtime import Runtime
from jobs.whatsapp_targets import WhatsAppCallFailed, target_for
from kapso.client import ApiTarget, WaContact, WhatsAppClient
from kapso.errors import WhatsAppError

log = logging.getLogger(__name__)

CHUNK = 500
_WA_ID = re.compile(r"[1-9]\d{6,14}")


@dataclass(frozen=True)
class ContactSyncResult:
    fetched: int
    created: int
    updated: int
    skipped: int


def contact_data(contact: WaContact, *, is_test: bool) -> ContactData | None:
    """Our view of a WhatsApp contact: its wa_id is a number WhatsApp knows, so +wa_id is kept
    as the E.164 phone even where phonenumbers' ranges lag behind; malformed ids are skipped."""
    if not _WA_ID.fullmatch(contact.wa_id):
        return None
    return ContactData(
        phone=f"+{contact.wa_id}",
        wa_id=contact.wa_id,
        name=contact.name,
        is_test=is_test,
        source="kapso",
    )


def sync_contacts(runtime: Runtime, config_ref: str | int) -> ContactSyncResult:
    """Upsert every contact of the configuration's number; safe to run again."""
    with transaction(runtime.sessions) as session:
        config = get_config(session, config_ref)
        target = target_for(config)
        # A sandbox number's contacts are simulated people: flagged test, never broadcast to.
        is_test = config.provider == Provider.SANDBOX
    try:
        return asyncio.run(_sync(runtime, target, is_test))
    except WhatsAppError as exc:
        raise WhatsAppCallFailed(exc) from None


async def _sync(runtime: Runtime, target: ApiTarget, is_test: bool) -> ContactSyncResult:
    fetched = created = updated = skipped = 0
    chunk: list[ContactData] = []

    def store() -> None:
        nonlocal created, updated
        with transaction(runtime.sessions) as session:
            result = upsert_contacts(session, chunk)
        created += result.created
        updated += result.updated
        chunk.clear()

    async with WhatsAppClient(max_in_flight=2) as client:
        async for contact in client.iter_contacts(target):
            fetched += 1
            data = contact_data(contact, is_test=is_test)
            if data is None:
                skipped += 1
                continue
            chunk.append(data)
            if len(chunk) >= CHUNK:
                store()
    if chunk:
        store()
    log.info(
        "contacts of %s: %s fetched, %s new, %s updated",
        *(target.config_name, fetched, created, updated),
    )
    return ContactSyncResult(fetched=fetched, created=created, updated=updated, skipped=skipped)
