"""SM3 vectors, HMAC-SM3, and blind indexes with their normalisation."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes

from qiao.core.crypto.sm3 import blind_index, hmac_sm3

INDEX_KEY = bytes.fromhex("8f1c2e7a90b34d5e6f708192a3b4c5d6")


def _sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


# GB/T 32905-2016, appendix A: examples 1 and 2.
@pytest.mark.parametrize(
    ("message", "digest"),
    [
        (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
        (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
    ],
    ids=["abc", "abcd-x16"],
)
def test_sm3_vectors_of_gbt_32905(message: bytes, digest: str) -> None:
    assert _sm3(message).hex() == digest


def test_hmac_sm3_follows_rfc_2104() -> None:
    key, message = b"qiao blind index", b"13800138000"
    padded = key.ljust(64, b"\x00")
    inner = _sm3(bytes(b ^ 0x36 for b in padded) + message)
    expected = _sm3(bytes(b ^ 0x5C for b in padded) + inner)
    assert hmac_sm3(key, message) == expected


def test_hmac_sm3_matches_the_standard_library_where_openssl_has_sm3() -> None:
    if "sm3" not in hashlib.algorithms_available:
        pytest.skip("this OpenSSL build has no SM3 for hashlib")
    key, message = INDEX_KEY, "张三".encode()
    assert hmac_sm3(key, message) == hmac.new(key, message, "sm3").digest()


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("13800138000", "138 0013 8000"),
        ("13800138000", "+86 138 0013 8000"),
        ("13800138000", "0086 13800138000"),
        ("13800138000", "１３８００１３８０００"),
        ("13800138000", "+8613800138000"),
    ],
)
def test_phone_indexes_match_across_ways_of_writing_a_number(left: str, right: str) -> None:
    assert blind_index(INDEX_KEY, left, "phone") == blind_index(INDEX_KEY, right, "phone")


def test_email_indexes_ignore_case_and_width() -> None:
    expected = blind_index(INDEX_KEY, "zhang.san@example.cn", "email")
    assert blind_index(INDEX_KEY, " Zhang.San@EXAMPLE.cn ", "email") == expected
    assert blind_index(INDEX_KEY, "ｚｈａｎｇ.ｓａｎ＠example.cn", "email") == expected


def test_text_indexes_fold_width_but_keep_case() -> None:
    assert blind_index(INDEX_KEY, "ＡＢＣ１２３") == blind_index(INDEX_KEY, " ABC123 ")
    assert blind_index(INDEX_KEY, "abc123") != blind_index(INDEX_KEY, "ABC123")


def test_index_depends_on_the_key_and_the_kind() -> None:
    index = blind_index(INDEX_KEY, "13800138000", "phone")
    assert len(index) == 64
    assert index != blind_index(bytes(16), "13800138000", "phone")
    assert blind_index(INDEX_KEY, "a@b.cn", "text") != blind_index(INDEX_KEY, "a@b.cn", "email")


def test_index_is_hmac_of_kind_and_normalised_value() -> None:
    expected = hmac_sm3(INDEX_KEY, b"phone\x00+8613800138000").hex()
    assert blind_index(INDEX_KEY, "138 0013 8000", "phone") == expected


@pytest.mark.parametrize("value", ["12345", "not a phone", ""])
def test_invalid_phone_numbers_are_not_indexed(value: str) -> None:
    with pytest.raises(ValueError, match="phone number"):
        blind_index(INDEX_KEY, value, "phone")


def test_short_index_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        blind_index(bytes(15), "x")


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown blind-index kind 'url'"):
        blind_index(INDEX_KEY, "x", "url")  # type: ignore[arg-type]
