"""Acceptance 6: caller numbers, table-driven. Nothing raises; everything maps somewhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.telephony.events import Presentation
from app.telephony.numbers import normalise

A, W, U = Presentation.allowed, Presentation.withheld, Presentation.unavailable

CASES = [
    # UK formats
    ("07700 900123", None, "+447700900123", A),
    ("07700900123", None, "+447700900123", A),
    ("+44 7700 900123", None, "+447700900123", A),
    ("+44 (0)20 7946 0018", None, "+442079460018", A),
    ("020 7946 0018", None, "+442079460018", A),
    ("0044 20 7946 0018", None, "+442079460018", A),
    ("00442079460018", None, "+442079460018", A),
    ("(0161) 496 0000", None, "+441614960000", A),
    ("0113-496-0000", None, "+441134960000", A),
    ("447700900123", None, "+447700900123", A),
    # international
    ("+1 212-555-0100", None, "+12125550100", A),
    ("001 212 555 0100", None, "+12125550100", A),
    ("+33 1 42 68 53 00", None, "+33142685300", A),
    ("+353 1 234 5678", None, "+35312345678", A),
    # SIP and tel URIs
    ("sip:+447700900123@pbx.example.org", None, "+447700900123", A),
    ("<sip:07700900123@10.0.0.1;user=phone>", None, "+447700900123", A),
    ("tel:+442079460018", None, "+442079460018", A),
    ("sip:anonymous@anonymous.invalid", None, None, W),
    # withheld words and sentinels
    ("anonymous", None, None, W),
    ("Anonymous", None, None, W),
    ("withheld", None, None, W),
    ("RESTRICTED", None, None, W),
    ("private", None, None, W),
    ("+266696687", None, None, W),
    ("+7378742833", None, None, W),
    ("+2562533", None, None, W),
    ("+8656696", None, None, U),
    ("<unknown>", None, None, U),
    ("unknown", None, None, U),
    ("unavailable", None, None, U),
    ("", None, None, U),
    (None, None, None, U),
    ("   ", None, None, U),
    # a platform's declared presentation wins over the number it sent
    ("07700 900123", "withheld", None, W),
    ("07700 900123", "unavailable", None, U),
    # short codes are services, not callers
    ("999", None, None, U),
    ("101", None, None, U),
    ("112", None, None, U),
    ("116 123", None, None, U),
    # garbage
    ("garbage", None, None, U),
    ("07700 90012x", None, None, U),
    ("++++", None, None, U),
    ("0", None, None, U),
    ("1234567890123456789012345", None, None, U),
    ("'; DROP TABLE call; --", None, None, U),
    ("\x00\x01", None, None, U),
]


@pytest.mark.parametrize(("raw", "declared", "e164", "presentation"), CASES)
def test_numbers(
    raw: str | None, declared: str | None, e164: str | None, presentation: Presentation
) -> None:
    result = normalise(raw, declared)
    assert (result.e164, result.presentation) == (e164, presentation)


def test_region_is_configurable() -> None:
    assert normalise("(212) 555-0100", region="US").e164 == "+12125550100"
    assert normalise("020 7946 0018", region="GB").e164 == "+442079460018"


@given(st.text(max_size=80), st.sampled_from([None, "allowed", "withheld", "bogus"]))
def test_never_raises(raw: str, declared: str | None) -> None:
    result = normalise(raw, declared)
    assert result.e164 is None or result.e164.startswith("+")
    assert (result.e164 is not None) <= (result.presentation is Presentation.allowed)
