"""Phone numbers to E.164: what is recovered, what is rejected and why, and a fast path that
agrees with phonenumbers on every number it accepts."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat

from broadcasts.imports.phones import PHONE_REASONS, fast_e164, normalise_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+447400123456", None, "+447400123456"),
        ("+44 7400 123456", None, "+447400123456"),
        ("+44 (0) 7400 123456", None, "+447400123456"),
        ("447400123456", None, "+447400123456"),  # Excel stripped the +
        ("00447400123456", None, "+447400123456"),
        ("07400 123456", "GB", "+447400123456"),
        ("447400123456", "GB", "+447400123456"),  # + stripped, with a region too
        ("+1 (415) 555-2671", None, "+14155552671"),
        ("14155552671", None, "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("0612345678", "FR", "+33612345678"),
        ("+39 06 6982 0000", None, "+390669820000"),  # Italian leading zero kept
        ("+7 912 345 67 89", None, "+79123456789"),
        ("+54 9 11 2345 6789", None, "+5491123456789"),
        ("  +4915112345678  ", None, "+4915112345678"),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalise_phone(raw, region) == (expected, "")


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("", None, "phone_empty"),
        ("   ", "GB", "phone_empty"),
        ("4.47E+11", None, "phone_scientific"),
        ("4,474E+11", "GB", "phone_scientific"),
        ("4.47400123456e11", None, "phone_scientific"),
        ("+44 74OO 123456", None, "phone_letters"),
        ("call me", "GB", "phone_letters"),
        ("123", None, "phone_too_short"),
        ("+4474001234567890", None, "phone_too_long"),
        ("07400 123456", None, "phone_no_country_code"),
        ("+999 1234567", None, "phone_bad_country_code"),
        ("+44 12", None, "phone_too_short"),
        ("+44 1234", None, "phone_invalid"),
        ("+44 7400 12345#", None, "phone_invalid"),
    ],
)
def test_bad_numbers_are_rejected_with_a_reason(raw: str, region: str | None, reason: str) -> None:
    assert normalise_phone(raw, region) == (None, reason)
    assert reason in PHONE_REASONS


def test_wrong_region_never_rewrites_an_international_number() -> None:
    # With a + the region is irrelevant; without one, the region is tried first (documented).
    assert normalise_phone("+447400123456", "IN") == ("+447400123456", "")


def _library(digits: str) -> str | None:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _samples() -> list[str]:
    """Example numbers of every region and type, and random digits around them."""
    rng = random.Random(11)
    samples: list[str] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE,
            phonenumbers.PhoneNumberType.TOLL_FREE,
        ):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            digits = phonenumbers.format_number(example, PhoneNumberFormat.E164)[1:]
            samples.append(digits)
            for _ in range(6):  # same prefix, random tail; a digit more or less
                tail = "".join(rng.choice("0123456789") for _ in range(4))
                samples.append(digits[:-4] + tail)
                samples.append(digits + rng.choice("0123456789"))
                samples.append(digits[:-1])
    return samples


def test_fast_path_accepts_only_what_phonenumbers_accepts() -> None:
    samples = _samples()
    assert len(samples) > 5000
    fast_hits = 0
    for digits in samples:
        fast = fast_e164(digits)
        full = _library(digits)
        if fast is not None:
            fast_hits += 1
            assert fast == full, digits
        assert normalise_phone("+" + digits, None)[0] == full, digits
    assert fast_hits > len(samples) // 4  # the fast path does real work
