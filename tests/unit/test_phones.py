"""Phone numbers to E.164: what is recovered, what is rejected and why, and a fast path that
agrees with phonenumbers on every number it accepts."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from broadcasts.imports.phones import (
    PHONE_REASONS,
    by_country,
    calling_code,
    country_label,
    fast_e164,
    normalise_phone,
)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+447400123456", None, "+447400123456"),
        ("+44 7400 123456", None, "+447400123456"),
        ("+44 (0) 7400 123456", None, "+447400123456"),
        ("00447400123456", None, "+447400123456"),
        ("07400 123456", "GB", "+447400123456"),
        ("447400123456", "GB", "+447400123456"),  # + stripped, with a region too
        ("+1 (415) 555-2671", None, "+14155552671"),
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
        ("123", "GB", "phone_too_short"),
        ("+4474001234567890", None, "phone_too_long"),
        ("07400 123456", None, "phone_no_country_code"),
        # Never silently given a country: these were read as Norway, Denmark, Switzerland.
        ("4755551234", None, "phone_no_country_code"),
        ("4582123456", None, "phone_no_country_code"),
        ("4155550113", None, "phone_no_country_code"),
        ("447400123456", None, "phone_no_country_code"),
        ("4755551234", "GB", "phone_invalid"),  # not a GB number, and not read as another
        ("0044 12", None, "phone_too_short"),
        ("+999 1234567", None, "phone_bad_country_code"),
        ("+44 12", None, "phone_too_short"),
        ("+44 1234", None, "phone_invalid"),
        ("+44 7400 12345#", None, "phone_invalid"),
    ],
)
def test_bad_numbers_are_rejected_with_a_reason(raw: str, region: str | None, reason: str) -> None:
    assert normalise_phone(raw, region) == (None, reason)
    assert reason in PHONE_REASONS


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("447400123456", None, ("+447400123456", "")),  # Excel stripped the +
        ("14155552671", None, ("+14155552671", "")),
        ("4755551234", "US", ("+14755551234", "")),  # the region first
        ("4155550113", None, (None, "phone_too_short")),  # +41 55550113 is too short
        ("07400 123456", None, (None, "phone_bad_country_code")),
    ],
)
def test_assume_international_reads_digits_as_plus_digits_after_the_region(
    raw: str, region: str | None, expected: tuple[str | None, str]
) -> None:
    assert normalise_phone(raw, region, assume_international=True) == expected
    if expected[0] is not None and region is None:
        assert normalise_phone(raw, region) == (None, "phone_no_country_code")


def test_calling_codes_and_country_labels() -> None:
    assert [calling_code(p) for p in ("+447400123456", "+14155552671", "+35312345678")] == [
        "+44",
        "+1",
        "+353",
    ]
    assert country_label("+44") == "+44 GB"
    assert country_label("+1") == "+1 US"
    assert by_country({"+447400123456": 2, "+447400123457": 1, "+14155552671": 1}) == {
        "+44": 3,
        "+1": 1,
    }


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
    # Random numbers of every calling code: national prefixes, leading zeros, every length.
    for code in sorted(COUNTRY_CODE_TO_REGION_CODE):
        for _ in range(25):
            size = rng.randint(3, 14)
            samples.append(str(code) + "".join(rng.choice("0123456789") for _ in range(size)))
    return samples


def test_fast_path_accepts_only_what_phonenumbers_accepts() -> None:
    samples = _samples()
    assert len(samples) > 10_000
    fast_hits = 0
    for digits in samples:
        fast = fast_e164(digits)
        full = _library(digits)
        if fast is not None:
            fast_hits += 1
            assert fast == full, digits
        assert normalise_phone("+" + digits, None)[0] == full, digits
    assert fast_hits > len(samples) // 4  # the fast path does real work
