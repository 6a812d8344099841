"""Phone numbers to E.164 with phonenumbers, plus a fast path for numbers already in E.164 form.

The fast path re-implements, with precompiled patterns, exactly the checks phonenumbers makes
for `parse("+<digits>")` followed by `is_valid_number`; whenever a number needs anything more (a
national prefix to strip, a leading zero, an unknown country code) or looks invalid, the full
library decides, so the fast path only ever accepts what phonenumbers accepts
(tests/unit/test_phones.py checks both paths agree on many numbers of every country).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, ValidationResult

NON_GEO_REGION = "001"  # phonenumbers' REGION_CODE_FOR_NON_GEO_ENTITY

# Reason codes (the keys of invalid_by_reason) and what they mean for a person fixing the file.
PHONE_REASONS = {
    "phone_empty": "the phone number is empty",
    "phone_scientific": (
        "the phone number is in scientific notation (like 4.47E+11): Excel has dropped digits; "
        "format the column as text and export again"
    ),
    "phone_letters": "the phone number contains letters",
    "phone_too_short": "the phone number is too short",
    "phone_too_long": "the phone number is too long",
    "phone_no_country_code": (
        "the phone number has no country code (write it as +<country code><number>, or import "
        "with a default region for national numbers, or as international numbers if they "
        "lost their + in Excel)"
    ),
    "phone_bad_country_code": "the phone number starts with an unknown country code",
    "phone_invalid": "the phone number is not a valid number for its country",
}

_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d*)?[eE][+-]?\d+")
_ALLOWED = re.compile(r"[\d\s+\-().,/\u00a0\u2010-\u2015]+")
_MAX_DIGITS = 17  # E.164 allows 15; a little slack so phonenumbers gives the precise reason

# The types phonenumbers tries in _number_type_helper, in its order.
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)

Desc = tuple[frozenset[int], re.Pattern[str]]


def _desc(desc: object) -> Desc | None:
    pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
    if not pattern:
        return None
    lengths = frozenset(getattr(desc, "possible_length", ()) or ())
    return lengths, re.compile(pattern)


class _RegionCheck:
    """`_number_type_helper(nsn, metadata) != UNKNOWN` with precompiled patterns, for numbers
    parse() reads as they are.

    The number has a type when the general description matches and any type's description does
    (length and pattern). Per length, one pattern says it all: a guard (no leading zero, no
    national prefix parse() could strip), the general pattern as a lookahead, then the type
    patterns joined into one alternation; a length no description allows has no pattern.
    """

    def __init__(self, metadata: PhoneMetadata, prefix: str | None) -> None:
        general = _desc(metadata.general_desc)
        descs = [_desc(getattr(metadata, name)) for name in _TYPE_DESCS]
        if not metadata.same_mobile_and_fixed_line_pattern:
            descs.append(_desc(metadata.mobile))
        types = [d for d in descs if d is not None]
        self.by_length: dict[int, re.Pattern[str]] = {}
        if general is not None:
            general_lengths, general_pattern = general
            guard = (
                "(?!0)"
                + (f"(?!{prefix})" if prefix else "")
                + rf"(?=(?:{general_pattern.pattern})\Z)"
            )
            for length in range(1, _MAX_DIGITS + 1):
                if general_lengths and length not in general_lengths:
                    continue
                patterns = [p.pattern for lengths, p in types if not lengths or length in lengths]
                if patterns:
                    alternation = "|".join(f"(?:{p})" for p in patterns)
                    self.by_length[length] = re.compile(f"{guard}(?:{alternation})")
        leading = metadata.leading_digits
        self.leading = re.compile(leading) if leading else None

    def has_type(self, nsn: str) -> bool:
        pattern = self.by_length.get(len(nsn))
        return pattern is not None and pattern.fullmatch(nsn) is not None


class _CountryCheck:
    """Validity of numbers of one country calling code, as is_valid_number decides it."""

    def __init__(self, code: int, regions: tuple[str, ...]) -> None:
        main = PhoneMetadata.metadata_for_region_or_calling_code(code, regions[0])
        prefix = main.national_prefix_for_parsing if main is not None else None
        self.regions: list[_RegionCheck] = []
        for region in regions:
            if region == NON_GEO_REGION:
                meta = PhoneMetadata.metadata_for_nongeo_region(code, None)
            else:
                meta = PhoneMetadata.metadata_for_region(region, None)
            if meta is not None and main is not None:
                self.regions.append(_RegionCheck(meta, prefix))

    def is_valid(self, nsn: str) -> bool:
        """True when the number is certainly valid; False when the full library must decide.

        A calling code shared by several regions goes to the first whose leading digits match,
        or else the first in which the number has a type (region_code_for_number's order).
        """
        if len(self.regions) == 1:
            return self.regions[0].has_type(nsn)
        for region in self.regions:
            if region.leading is not None:
                if region.leading.match(nsn):
                    return region.has_type(nsn)
            elif region.has_type(nsn):
                return True
        return False


@cache
def _country(code: str) -> _CountryCheck | None:
    """The check of a calling code written as digits ("44"), None if no country has it."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(int(code))
    return _CountryCheck(int(code), tuple(regions)) if regions else None


# Calling codes are prefix-free: at most one of a number's first 1, 2 or 3 digits is one.
_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


def fast_e164(digits: str) -> str | None:
    """'+'+digits when `digits` (no '+') is certainly a valid E.164 number; None if unsure."""
    code = (
        digits[:1]
        if digits[:1] in _CODES
        else digits[:2]
        if digits[:2] in _CODES
        else digits[:3]
        if digits[:3] in _CODES
        else None
    )
    if code is None or code[0] == "0":
        return None
    check = _country(code)
    nsn = digits[len(code) :]
    if check is None or not nsn:
        return None
    return "+" + digits if check.is_valid(nsn) else None


_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "phone_bad_country_code",
    NumberParseException.NOT_A_NUMBER: "phone_invalid",
    NumberParseException.TOO_SHORT_AFTER_IDD: "phone_too_short",
    NumberParseException.TOO_SHORT_NSN: "phone_too_short",
    NumberParseException.TOO_LONG: "phone_too_long",
}

_POSSIBLE = {
    ValidationResult.TOO_SHORT: "phone_too_short",
    ValidationResult.TOO_LONG: "phone_too_long",
    ValidationResult.INVALID_COUNTRY_CODE: "phone_bad_country_code",
}


def _full(text: str, region: str | None) -> tuple[str | None, str]:
    """(E.164, "") or (None, reason) by the full library."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE and "+" not in text:
            return None, "phone_no_country_code"
        return None, _PARSE_ERRORS.get(exc.error_type, "phone_invalid")
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, PhoneNumberFormat.E164), ""
    reason = phonenumbers.is_possible_number_with_reason(number)
    return None, _POSSIBLE.get(reason, "phone_invalid")


def normalise_phone(
    raw: str, region: str | None, *, assume_international: bool = False
) -> tuple[str | None, str]:
    """(E.164, "") for a valid number, else (None, reason code from PHONE_REASONS).

    A number is never silently given a country (the seed: "phone numbers must include the
    country code"). The rules, in order:
    - `+<digits>` and `00<digits>` are international numbers, whatever the region;
    - other numbers are read in `region` when one is given (`07400 123456` in GB; a number
      starting with the region's own calling code, `447400123456` in GB, is read as such);
    - otherwise, only with `assume_international` (the file's numbers lost their `+` in Excel)
      are the digits read as `+<digits>`; without it they are refused as phone_no_country_code.
    """
    text = raw.strip()
    if not text:
        return None, "phone_empty"
    if text[0] == "+" and text[1:].isdigit() and text.isascii():
        found = fast_e164(text[1:])
        if found is not None:
            return found, ""
    if _SCIENTIFIC.fullmatch(text):
        return None, "phone_scientific"
    if not _ALLOWED.fullmatch(text):
        return None, "phone_letters" if any(c.isalpha() for c in text) else "phone_invalid"
    digits = "".join(c for c in text if c.isdigit())
    if not digits:
        return None, "phone_invalid"
    if len(digits) > _MAX_DIGITS:
        return None, "phone_too_long"
    if text.startswith("+"):
        return _full(text, region)
    if text.startswith("00") and digits.startswith("00"):
        return _international(digits[2:])
    first_reason = "phone_no_country_code"
    if region is not None:
        found, first_reason = _full(text, region)
        if found is not None:
            return found, ""
    if not assume_international:
        return None, first_reason
    found, reason = _international(digits)
    if found is not None or region is None:
        return found, reason
    return None, first_reason


def _international(digits: str) -> tuple[str | None, str]:
    """`digits` read as `+<digits>`."""
    if not digits or digits[0] == "0":
        return None, "phone_bad_country_code" if digits else "phone_too_short"
    fast = fast_e164(digits)
    if fast is not None:
        return fast, ""
    return _full("+" + digits, None)


Normaliser = Callable[[str], tuple[str | None, str]]


def normaliser(region: str | None, *, assume_international: bool = False) -> Normaliser:
    """normalise_phone bound to one region and rule (what an import uses for every row)."""
    region = region.upper() if region else None

    def normalise(raw: str) -> tuple[str | None, str]:
        return normalise_phone(raw, region, assume_international=assume_international)

    return normalise


def calling_code(e164: str) -> str:
    """`+44` for `+447400123456` (calling codes are prefix-free, so at most one matches)."""
    digits = e164.lstrip("+")
    for size in (1, 2, 3):
        if digits[:size] in _CODES:
            return "+" + digits[:size]
    return "+?"


def country_label(code: str) -> str:
    """`+44 GB`, `+1 US` (a calling code and its main region), for per-country tallies."""
    try:
        regions = COUNTRY_CODE_TO_REGION_CODE.get(int(code.lstrip("+")), ())
    except ValueError:
        return code
    if not regions:
        return code
    return f"{code} {regions[0]}"


def by_country(phones_or_counts: dict[str, int]) -> dict[str, int]:
    """Counts keyed by calling code (`+44`) from counts keyed by E.164 prefix or number."""
    out: dict[str, int] = {}
    for phone, n in phones_or_counts.items():
        code = calling_code(phone)
        out[code] = out.get(code, 0) + n
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def valid_region(region: str) -> bool:
    return region.upper() in phonenumbers.SUPPORTED_REGIONS
