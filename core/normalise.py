"""Normal forms of typed text: half-width characters, E.164 phone numbers.

Value coercion stores these forms and blind indexes hash them, so a number or a
name is found however it was typed. They depend on nothing else in Qiao, which
lets the crypto layer use them without reaching up into the records service.
"""

from __future__ import annotations

import unicodedata

import phonenumbers

DEFAULT_PHONE_REGION = "CN"


def normalise_width(text: str) -> str:
    """Full-width ASCII (common in Chinese input methods) to half-width: '１３８' -> '138'."""
    return unicodedata.normalize("NFKC", text)


#: How many spellings :func:`normalise_phone` remembers; a lead import meets each number
#: once as typed and once in its stored form, so a whole sheet's worth is kept.
PHONE_CACHE_SIZE = 65_536
_phones: dict[str, str] = {}


def normalise_phone(text: str) -> str:
    """The E.164 form of a phone number (``+8613800138000``); without a country code, Chinese.

    Shared by storage and by blind indexes, so a number is found however it was typed.
    Raises ValueError for text that is not a valid number. Remembered per distinct
    text, together with the E.164 form it gave (which normalises to itself): an
    import cleans a number as typed, then storage, its blind index and duplicate
    keys normalise the stored form, and parsing is the dearest step of each.
    """
    found = _phones.get(text)
    if found is None:
        found = parse_phone(text)
        if len(_phones) >= PHONE_CACHE_SIZE:
            _phones.clear()
        _phones[text] = _phones[found] = found
    return found


def parse_phone(text: str) -> str:
    """:func:`normalise_phone` without remembering: every call parses ``text``."""
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
