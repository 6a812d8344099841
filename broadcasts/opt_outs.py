"""STOP-like keywords: whether an inbound message asks to opt out or back in."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

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
