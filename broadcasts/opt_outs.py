"""Opting out and back in: STOP-like keywords and WhatsApp's marketing preference updates."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from broadcasts.models import Contact

_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Lower case, accents and punctuation dropped, single spaces: `¡ Baja !` → `baja`."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOISE.sub(" ", plain).strip()


def keyword_intent(
    text: str | None, opt_out_words: Iterable[str], opt_in_words: Iterable[str]
) -> bool | None:
    """True for an opt-out keyword, False for an opt-in one, None otherwise (whole message only)."""
    if not text or len(text) > 40:
        return None
    said = normalise(text)
    if said in {normalise(w) for w in opt_out_words}:
        return True
    if said in {normalise(w) for w in opt_in_words}:
        return False
    return None


def set_opt_out(
    session: Session, contact: Contact, opted_out: bool, *, reason: str, at: datetime
) -> bool:
    """Mark a contact opted out (or back in); returns whether anything changed."""
    if opted_out and contact.opted_out_at is None:
        contact.opted_out_at = at
        contact.opt_out_reason = reason[:255]
        return True
    if not opted_out and contact.opted_out_at is not None:
        contact.opted_out_at = None
        contact.opt_out_reason = None
        return True
    return False


def contacts_of(session: Session, wa_id: str) -> list[Contact]:
    """Every contact WhatsApp's `wa_id` designates (by wa_id or by number)."""
    return list(
        session.scalars(
            select(Contact).where(or_(Contact.wa_id == wa_id, Contact.phone == f"+{wa_id}"))
        )
    )
