"""Normal forms of typed text: half-width characters, E.164 phone numbers.

Value coercion stores these forms and blind indexes hash them, so a number or a
name is found however it was typed. They depend on nothing else in Qiao, which
lets the crypto layer use them without reaching up into the records service.
"""

from __future__ import annotations

import functools
import unicodedata

import phonenumbers

DEFAULT_PHONE_REGION = "CN"


def normalise_width(text: str) -> str:
    """Full-width ASCII (common in Chinese input methods) to half-width: '１３８' -> '138'."""
    return unicodedata.normalize("NFKC", text)


@functools.lru_cache(maxsize=4096)
def normalise_phone(text: str) -> str:
    """The E.164 form of a phone number (``+8613800138000``); without a country code, Chinese.

    Shared by storage and by blind indexes, so a number is found however it was typed.
    Raises ValueError for text that is not a valid number. Remembered: a write
    normalises a number once to store it and again for its blind index, and
    parsing is the dearest step of either.
    """
    text = normalise_width(text).strip()
    try:
        number = phonenumbers.parse(text, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{text!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{text!r} is not a valid phone number")
    if number.extension:
        # E.164 has no place for an extension; dropping it silently would lose data.
        raise ValueError(f"{text!r} has an extension; store it in a separate field")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
