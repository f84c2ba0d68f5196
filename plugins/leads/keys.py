"""Comparison keys: the forms in which two spellings of one phone, e-mail or company meet.

A trade-show sheet says "宁波东海汽车零部件有限公司", the web form "宁波东海汽车零部件",
the hotline "+86 138-0013-8000" where the CRM holds "+8613800138000". Duplicates
are found by comparing these keys, never the raw text.
"""

from __future__ import annotations

import re

from qiao.api import normalise_phone, normalise_width

#: Chinese legal-form suffixes that say nothing about which company it is; longest first.
_CHINESE_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "集团公司",
    "集团",
    "公司",
    "厂",
)
#: The same for English names, compared word by word so that "Tesco" keeps its "co".
_ENGLISH_SUFFIXES = frozenset(
    {
        "co",
        "corp",
        "corporation",
        "company",
        "inc",
        "incorporated",
        "limited",
        "ltd",
        "llc",
        "plc",
        "gmbh",
    }
)
_PUNCTUATION = re.compile(r"[\s\W_]+", re.UNICODE)


def phone_key(text: str | None) -> str | None:
    """E.164 form, or None when the text is not a valid number."""
    if not text:
        return None
    try:
        return normalise_phone(str(text))
    except ValueError:
        return None


def email_key(text: str | None) -> str | None:
    if not text:
        return None
    text = normalise_width(str(text)).strip().lower()
    return text if "@" in text else None


def company_key(text: str | None) -> str | None:
    """Half-width, lower-case, without legal suffixes and punctuation.

    '宁波东海（集团）有限公司' and '宁波东海' share the key '宁波东海'.

    Suffixes are removed repeatedly ('XX集团有限公司' loses both), but never
    down to nothing: '有限公司' alone stays itself.
    """
    if not text:
        return None
    words = _PUNCTUATION.sub(" ", normalise_width(str(text)).lower()).split()
    while len(words) > 1 and words[-1] in _ENGLISH_SUFFIXES:
        words.pop()
    key = "".join(words)
    stripped = True
    while stripped:
        stripped = False
        for suffix in _CHINESE_SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                key = key.removesuffix(suffix)
                stripped = True
                break
    return key or None
