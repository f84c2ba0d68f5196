"""SM4-GCM: standard vectors, sealed field values, and sealed backup streams."""

from __future__ import annotations

import base64
import io
import threading

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from qiao.core.crypto.errors import (
    CryptoIntegrityError,
    DataKeyExhaustedError,
    KeyUnavailableError,
)
from qiao.core.crypto.sm4gcm import (
    FIELD_PREFIX,
    NONCE_SIZE,
    RANDOM_NONCE_LIMIT,
    TAG_SIZE,
    DataKey,
    FieldContext,
    Keyring,
    decrypt_stream,
    encrypt_stream,
    is_sealed,
    open_column,
    open_field,
    open_text,
    seal_field,
    seal_text,
    sealed_key_id,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

KEY_ID = "dek-account-3"
RECORD_ID = "0193a5b2-7c4e-7d1a-9f3b-2a6c8e0d4f51"
OTHER_RECORD_ID = "0193a5b2-7c4e-7d1a-9f3b-2a6c8e0d4f52"
CONTEXT = FieldContext("account", "phone", RECORD_ID)

# RFC 8998, appendix A.1 (SM4-GCM).
RFC8998_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
RFC8998_IV = bytes.fromhex("00001234567800000000ABCD")
RFC8998_AAD = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
RFC8998_PLAINTEXT = bytes.fromhex(
    "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
)
RFC8998_CIPHERTEXT = bytes.fromhex(
    "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
    "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
)
RFC8998_TAG = bytes.fromhex("83DE3541E4C2B58177E065A9BF7B62EC")


@pytest.fixture
def key() -> DataKey:
    return DataKey.generate(KEY_ID)


@pytest.fixture
def keyring(key: DataKey) -> Keyring:
    return Keyring([key])


def _decode(token: str) -> bytearray:
    body = token.removeprefix(FIELD_PREFIX)
    return bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _encode(raw: bytes) -> str:
    return FIELD_PREFIX + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


# Standard vectors ---------------------------------------------------------------


def test_sm4_block_vector_of_gbt_32907() -> None:
    block = bytes.fromhex("0123456789abcdeffedcba9876543210")
    encryptor = Cipher(algorithms.SM4(block), modes.ECB()).encryptor()
    ciphertext = encryptor.update(block) + encryptor.finalize()
    assert ciphertext.hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_gcm_vector_of_rfc_8998() -> None:
    sealed = sm4_gcm_encrypt(RFC8998_KEY, RFC8998_IV, RFC8998_PLAINTEXT, RFC8998_AAD)
    assert sealed == RFC8998_CIPHERTEXT + RFC8998_TAG


def test_sm4_gcm_vector_of_rfc_8998_decrypts() -> None:
    sealed = RFC8998_CIPHERTEXT + RFC8998_TAG
    assert sm4_gcm_decrypt(RFC8998_KEY, RFC8998_IV, sealed, RFC8998_AAD) == RFC8998_PLAINTEXT


def test_sm4_gcm_refuses_a_wrong_tag_without_leaking_invalid_tag() -> None:
    sealed = RFC8998_CIPHERTEXT + bytes(TAG_SIZE)
    with pytest.raises(CryptoIntegrityError) as caught:
        sm4_gcm_decrypt(RFC8998_KEY, RFC8998_IV, sealed, RFC8998_AAD)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert not isinstance(caught.value, InvalidTag)


def test_sm4_gcm_refuses_wrong_associated_data() -> None:
    sealed = RFC8998_CIPHERTEXT + RFC8998_TAG
    with pytest.raises(CryptoIntegrityError):
        sm4_gcm_decrypt(RFC8998_KEY, RFC8998_IV, sealed, RFC8998_AAD[:-1])


@pytest.mark.parametrize(
    ("key", "nonce"),
    [(bytes(15), bytes(NONCE_SIZE)), (bytes(16), bytes(16)), (bytes(32), bytes(NONCE_SIZE))],
)
def test_sm4_gcm_checks_key_and_nonce_sizes(key: bytes, nonce: bytes) -> None:
    with pytest.raises(ValueError, match="bytes"):
        sm4_gcm_encrypt(key, nonce, b"x", b"")


# Data keys and the keyring ------------------------------------------------------------


def test_data_key_counts_seals_and_refuses_past_its_limit() -> None:
    key = DataKey.generate(KEY_ID, limit=3)
    for expected in (1, 2, 3):
        seal_text("x", key, CONTEXT)
        assert key.messages_sealed == expected
    assert key.exhausted
    assert key.remaining == 0
    with pytest.raises(DataKeyExhaustedError, match=f"'{KEY_ID}'.*new data key"):
        seal_text("x", key, CONTEXT)
    assert key.messages_sealed == 3


def test_data_key_default_limit_is_the_random_nonce_bound() -> None:
    key = DataKey.generate(KEY_ID)
    assert key.limit == RANDOM_NONCE_LIMIT == 2**32
    assert not key.exhausted


def test_data_key_resumes_from_a_stored_count() -> None:
    key = DataKey(KEY_ID, bytes(16), messages_sealed=RANDOM_NONCE_LIMIT - 1)
    assert key.remaining == 1
    seal_text("last", key, CONTEXT)
    assert key.exhausted
    with pytest.raises(DataKeyExhaustedError):
        seal_text("one too many", key, CONTEXT)


def test_on_seal_hook_sees_the_new_count_and_can_stop_the_seal() -> None:
    seen: list[int] = []

    def persist(key: DataKey) -> None:
        seen.append(key.messages_sealed)
        if len(seen) == 2:
            raise OSError("counter store is down")

    key = DataKey(KEY_ID, bytes(16), on_seal=persist)
    seal_text("a", key, CONTEXT)
    with pytest.raises(OSError, match="counter store"):
        seal_text("b", key, CONTEXT)
    assert seen == [1, 2]


def test_data_key_repr_hides_the_secret() -> None:
    key = DataKey(KEY_ID, bytes.fromhex("00112233445566778899aabbccddeeff"))
    assert "00112233" not in repr(key)
    assert "\\x00\\x11" not in repr(key)
    assert KEY_ID in repr(key)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key_id": "", "secret": bytes(16)},
        {"key_id": "dek account", "secret": bytes(16)},
        {"key_id": "密钥", "secret": bytes(16)},
        {"key_id": "k" * 65, "secret": bytes(16)},
        {"key_id": KEY_ID, "secret": bytes(32)},
        {"key_id": KEY_ID, "secret": bytes(16), "messages_sealed": -1},
        {"key_id": KEY_ID, "secret": bytes(16), "limit": 2**32 + 1},
        {"key_id": KEY_ID, "secret": bytes(16), "limit": 5, "messages_sealed": 6},
    ],
)
def test_data_key_rejects_invalid_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DataKey(**kwargs)  # type: ignore[arg-type]


def test_keyring_refuses_two_secrets_under_one_id(key: DataKey) -> None:
    keyring = Keyring([key])
    seal_text("x", key, CONTEXT)
    keyring.add(DataKey(KEY_ID, key.secret))
    assert len(keyring) == 1
    assert keyring.lookup(KEY_ID) is key
    assert keyring.lookup(KEY_ID).messages_sealed == 1
    with pytest.raises(ValueError, match=KEY_ID):
        keyring.add(DataKey.generate(KEY_ID))


# Field values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [b"", b"13800138000", bytes(range(256)), "张三 北京市朝阳区".encode()]
)
def test_field_round_trip(value: bytes, key: DataKey, keyring: Keyring) -> None:
    token = seal_field(value, key, CONTEXT)
    assert open_field(token, keyring, CONTEXT) == value


def test_text_round_trip_with_chinese(key: DataKey, keyring: Keyring) -> None:
    value = "北京市朝阳区建国路 88 号 · 张三 📞"
    token = seal_text(value, key, CONTEXT)
    assert value not in token
    assert open_text(token, keyring, CONTEXT) == value


def test_token_layout(key: DataKey) -> None:
    token = seal_field(b"hello", key, CONTEXT)
    assert token.startswith("sm4g:")
    assert token.isascii()
    assert "=" not in token
    raw = _decode(token)
    assert raw[0] == 1
    assert raw[1] == len(KEY_ID)
    assert raw[2 : 2 + len(KEY_ID)] == KEY_ID.encode()
    assert len(raw) == 2 + len(KEY_ID) + NONCE_SIZE + len(b"hello") + TAG_SIZE


def test_is_sealed_and_sealed_key_id(key: DataKey) -> None:
    token = seal_text("x", key, CONTEXT)
    assert is_sealed(token)
    assert not is_sealed("13800138000")
    assert sealed_key_id(token) == KEY_ID


def test_nonces_are_unique_across_many_seals(key: DataKey) -> None:
    tokens = [seal_field(b"same value", key, CONTEXT) for _ in range(5000)]
    offset = 2 + len(KEY_ID)
    nonces = {bytes(_decode(t)[offset : offset + NONCE_SIZE]) for t in tokens}
    assert len(nonces) == len(tokens)
    assert key.messages_sealed == len(tokens)


@pytest.mark.parametrize(
    "elsewhere",
    [
        FieldContext("account", "phone", OTHER_RECORD_ID),
        FieldContext("account", "mobile", RECORD_ID),
        FieldContext("contact", "phone", RECORD_ID),
    ],
    ids=["other-record", "other-field", "other-entity"],
)
def test_value_copied_elsewhere_does_not_open(
    elsewhere: FieldContext, key: DataKey, keyring: Keyring
) -> None:
    token = seal_text("13800138000", key, CONTEXT)
    with pytest.raises(CryptoIntegrityError) as caught:
        open_text(token, keyring, elsewhere)
    message = str(caught.value)
    assert elsewhere.describe() in message
    assert "copied from another record or field" in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_context_parts_cannot_be_shifted(key: DataKey, keyring: Keyring) -> None:
    token = seal_text("x", key, FieldContext("ab", "c", RECORD_ID))
    with pytest.raises(CryptoIntegrityError):
        open_text(token, keyring, FieldContext("a", "bc", RECORD_ID))


@pytest.mark.parametrize("part", ["entity", "field", "record_id"])
def test_field_context_parts_are_required(part: str) -> None:
    parts = {"entity": "account", "field": "phone", "record_id": RECORD_ID, part: ""}
    with pytest.raises(ValueError, match=part):
        FieldContext(**parts)


@pytest.mark.parametrize(
    "region",
    ["nonce", "ciphertext", "tag"],
)
def test_tampered_token_is_refused(region: str, key: DataKey, keyring: Keyring) -> None:
    token = seal_field(b"some secret value", key, CONTEXT)
    raw = _decode(token)
    nonce_at = 2 + len(KEY_ID)
    position = {"nonce": nonce_at, "ciphertext": nonce_at + NONCE_SIZE, "tag": len(raw) - 1}
    raw[position[region]] ^= 0x01
    with pytest.raises(CryptoIntegrityError, match="does not verify"):
        open_field(_encode(raw), keyring, CONTEXT)


def test_header_key_id_is_authenticated(key: DataKey) -> None:
    token = seal_field(b"value", key, CONTEXT)
    raw = _decode(token)
    raw[2 + len(KEY_ID) - 1] = ord("4")
    twin = DataKey("dek-account-4", key.secret)
    keyring = Keyring([key, twin])
    with pytest.raises(CryptoIntegrityError, match="dek-account-4"):
        open_field(_encode(raw), keyring, CONTEXT)


def test_unknown_format_version_is_refused(key: DataKey, keyring: Keyring) -> None:
    raw = _decode(seal_field(b"value", key, CONTEXT))
    raw[0] = 2
    with pytest.raises(CryptoIntegrityError, match="format version 2"):
        open_field(_encode(raw), keyring, CONTEXT)


@pytest.mark.parametrize(
    "token",
    [
        "13800138000",
        "sm4g:",
        "sm4g:not base64!",
        "sm4g:A",
        "sm4g:AQ",
        "sm4g:AQ1kZWstYWNjb3VudC0z",
        "sm4g:AQDw",
    ],
)
def test_malformed_tokens_are_refused_clearly(token: str, keyring: Keyring) -> None:
    with pytest.raises(CryptoIntegrityError, match=f"^{CONTEXT.describe()}: "):
        open_field(token, keyring, CONTEXT)


def test_truncated_token_is_refused(key: DataKey, keyring: Keyring) -> None:
    token = seal_field(b"value", key, CONTEXT)
    for cut in (1, 4, 8, 20):
        with pytest.raises(CryptoIntegrityError):
            open_field(token[:-cut], keyring, CONTEXT)


def test_unknown_key_id_names_the_key(key: DataKey) -> None:
    token = seal_text("x", key, CONTEXT)
    with pytest.raises(KeyUnavailableError, match=f"data key '{KEY_ID}' is not loaded"):
        open_text(token, Keyring(), CONTEXT)


def test_a_column_opens_each_value_under_its_key_and_record(key: DataKey) -> None:
    newer = DataKey.generate("dek-account-4")
    records = [f"0193a5b2-7c4e-7d1a-9f3b-2a6c8e0d4f{n:02d}" for n in range(6)]
    sealed = [
        (
            rid,
            seal_text(
                f"138001380{n:02d}", key if n % 2 else newer, FieldContext("account", "phone", rid)
            ),
        )
        for n, rid in enumerate(records)
    ]
    keyring = Keyring([key, newer])
    assert open_column("account", "phone", sealed, keyring) == [
        f"138001380{n:02d}".encode() for n in range(6)
    ]
    assert open_column("account", "phone", [], keyring) == []
    # Record 3's value copied over record 4's: only record 4 is named, under record 3's key.
    moved = [*sealed[:4], (records[4], sealed[3][1]), sealed[5]]
    with pytest.raises(CryptoIntegrityError) as caught:
        open_column("account", "phone", moved, keyring)
    assert str(caught.value).startswith(f"account.phone of record {records[4]}: ")
    assert f"under data key {KEY_ID!r}" in str(caught.value)
    # Values of another field do not open as this one's, even in the same page.
    with pytest.raises(CryptoIntegrityError, match=f"account.mobile of record {records[0]}"):
        open_column("account", "mobile", sealed, keyring)


def test_a_column_refuses_a_malformed_value_naming_its_record(key: DataKey) -> None:
    good = (RECORD_ID, seal_text("x", key, CONTEXT))
    with pytest.raises(
        CryptoIntegrityError, match=f"^account.phone of record {OTHER_RECORD_ID}: .*base64"
    ):
        open_column(
            "account", "phone", [good, (OTHER_RECORD_ID, "sm4g:not base64!")], Keyring([key])
        )
    with pytest.raises(KeyUnavailableError, match=f"data key '{KEY_ID}' is not loaded"):
        open_column("account", "phone", [good], Keyring())
    with pytest.raises(ValueError, match="record_id"):
        open_column("account", "phone", [good, ("", good[1])], Keyring([key]))


def test_wrong_key_under_the_right_id_is_refused(key: DataKey) -> None:
    token = seal_text("x", key, CONTEXT)
    impostor = Keyring([DataKey.generate(KEY_ID)])
    with pytest.raises(CryptoIntegrityError, match="does not verify"):
        open_text(token, impostor, CONTEXT)


# Streams ------------------------------------------------------------------------------

CHUNK = 64


def _seal_stream(data: bytes, key: DataKey, chunk_size: int = CHUNK) -> bytes:
    out = io.BytesIO()
    assert encrypt_stream(io.BytesIO(data), out, key, chunk_size=chunk_size) == len(data)
    return out.getvalue()


def _split(sealed: bytes, chunk_size: int = CHUNK) -> tuple[bytes, list[bytes]]:
    header_size = 5 + 1 + 1 + len(KEY_ID) + 4 + 16
    header, body = sealed[:header_size], sealed[header_size:]
    record = chunk_size + TAG_SIZE
    return header, [body[i : i + record] for i in range(0, len(body), record)]


def _open_stream(sealed: bytes, keyring: Keyring) -> tuple[bytes, bytes | Exception]:
    """What was written to the output, and the result or the error."""
    out = io.BytesIO()
    try:
        decrypt_stream(io.BytesIO(sealed), out, keyring)
    except (CryptoIntegrityError, KeyUnavailableError) as exc:
        return out.getvalue(), exc
    return out.getvalue(), b"ok"


def _data(size: int) -> bytes:
    return bytes((i * 7 + i // 256) % 256 for i in range(size))


@pytest.mark.parametrize(
    ("size", "chunks"),
    [
        (0, 1),
        (1, 1),
        (CHUNK - 1, 1),
        (CHUNK, 1),
        (CHUNK + 1, 2),
        (3 * CHUNK, 3),
        (3 * CHUNK + 5, 4),
    ],
)
def test_stream_round_trip(size: int, chunks: int, key: DataKey, keyring: Keyring) -> None:
    data = _data(size)
    sealed = _seal_stream(data, key)
    header, records = _split(sealed)
    assert len(records) == chunks
    assert len(sealed) == len(header) + size + chunks * TAG_SIZE
    out = io.BytesIO()
    assert decrypt_stream(io.BytesIO(sealed), out, keyring) == size
    assert out.getvalue() == data


@pytest.mark.parametrize("size", [0, 200_000, 2 * 64 * 1024])
def test_stream_round_trip_with_default_chunks(size: int, key: DataKey, keyring: Keyring) -> None:
    data = _data(size)
    sealed = io.BytesIO()
    encrypt_stream(io.BytesIO(data), sealed, key)
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(sealed.getvalue()), out, keyring)
    assert out.getvalue() == data


def test_stream_header_names_the_key_and_counts_one_message(key: DataKey) -> None:
    sealed = _seal_stream(_data(10 * CHUNK), key)
    assert sealed.startswith(b"QSM4S\x01" + bytes([len(KEY_ID)]) + KEY_ID.encode())
    assert key.messages_sealed == 1


def test_equal_streams_seal_differently(key: DataKey) -> None:
    data = _data(2 * CHUNK)
    assert _seal_stream(data, key) != _seal_stream(data, key)


class _Trickle(io.RawIOBase):
    """A source that returns at most a few bytes per read, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 7) if size >= 0 else 7)


def test_stream_survives_short_reads(key: DataKey, keyring: Keyring) -> None:
    data = _data(5 * CHUNK + 3)
    sealed = io.BytesIO()
    encrypt_stream(_Trickle(data), sealed, key, chunk_size=CHUNK)  # type: ignore[arg-type]
    out = io.BytesIO()
    decrypt_stream(_Trickle(sealed.getvalue()), out, keyring)  # type: ignore[arg-type]
    assert out.getvalue() == data


def _assert_refused_at(sealed: bytes, keyring: Keyring, index: int, data: bytes) -> None:
    written, result = _open_stream(sealed, keyring)
    assert isinstance(result, CryptoIntegrityError), result
    assert f"chunk {index} does not verify" in str(result)
    assert written == data[: index * CHUNK]


def test_stream_truncated_at_a_chunk_boundary_is_refused(key: DataKey, keyring: Keyring) -> None:
    data = _data(4 * CHUNK)
    header, records = _split(_seal_stream(data, key))
    _assert_refused_at(header + b"".join(records[:3]), keyring, 2, data)


def test_stream_truncated_inside_a_chunk_is_refused(key: DataKey, keyring: Keyring) -> None:
    data = _data(4 * CHUNK)
    sealed = _seal_stream(data, key)
    _assert_refused_at(sealed[:-10], keyring, 3, data)


def test_stream_with_reordered_chunks_is_refused(key: DataKey, keyring: Keyring) -> None:
    data = _data(4 * CHUNK)
    header, records = _split(_seal_stream(data, key))
    records[0], records[1] = records[1], records[0]
    _assert_refused_at(header + b"".join(records), keyring, 0, data)


def test_stream_with_a_dropped_chunk_is_refused(key: DataKey, keyring: Keyring) -> None:
    data = _data(4 * CHUNK)
    header, records = _split(_seal_stream(data, key))
    del records[1]
    _assert_refused_at(header + b"".join(records), keyring, 1, data)


def test_stream_with_an_altered_chunk_is_refused(key: DataKey, keyring: Keyring) -> None:
    data = _data(4 * CHUNK)
    sealed = bytearray(_seal_stream(data, key))
    header, _records = _split(bytes(sealed))
    sealed[len(header) + (CHUNK + TAG_SIZE) * 2 + 5] ^= 0x80
    _assert_refused_at(bytes(sealed), keyring, 2, data)


@pytest.mark.parametrize("extra", [b"\x00", b"more data" * 20])
def test_stream_with_extra_data_is_refused(extra: bytes, key: DataKey, keyring: Keyring) -> None:
    data = _data(3 * CHUNK)
    _assert_refused_at(_seal_stream(data, key) + extra, keyring, 2, data)


def test_stream_with_its_final_chunk_repeated_is_refused(key: DataKey, keyring: Keyring) -> None:
    data = _data(2 * CHUNK + 9)
    header, records = _split(_seal_stream(data, key))
    _assert_refused_at(header + b"".join([*records, records[-1]]), keyring, 2, data)


def test_chunks_cannot_move_between_streams(key: DataKey, keyring: Keyring) -> None:
    data = _data(3 * CHUNK)
    header, records = _split(_seal_stream(data, key))
    _other_header, other_records = _split(_seal_stream(data, key))
    records[1] = other_records[1]
    _assert_refused_at(header + b"".join(records), keyring, 1, data)


CHUNK_SIZE_AT = 7 + len(KEY_ID)


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (0, "not a Qiao SM4 stream"),
        (5, "format version"),
        # 0x00000040 becomes 0x01000040, past the 16 MiB maximum: refused before
        # any chunk is read, so a forged header cannot make the reader allocate more.
        (CHUNK_SIZE_AT, "impossible chunk size 16777280"),
        # 0x00000140 and 0x00000041 are plausible sizes: the header is
        # authenticated with every chunk, so chunk 0 fails.
        (CHUNK_SIZE_AT + 2, "chunk 0 does not verify"),
        (CHUNK_SIZE_AT + 3, "chunk 0 does not verify"),
        (CHUNK_SIZE_AT + 4 + 8, "chunk 0 does not verify"),
    ],
    ids=[
        "magic",
        "version",
        "chunk-size-out-of-range",
        "chunk-size-high",
        "chunk-size-low",
        "salt",
    ],
)
def test_stream_with_an_altered_header_is_refused(
    offset: int, message: str, key: DataKey, keyring: Keyring
) -> None:
    sealed = bytearray(_seal_stream(_data(3 * CHUNK), key))
    sealed[offset] ^= 0x01
    written, result = _open_stream(bytes(sealed), keyring)
    assert isinstance(result, CryptoIntegrityError), result
    assert message in str(result)
    assert written == b""


@pytest.mark.parametrize("cut", [0, 3, 7, 7 + len(KEY_ID) + 10])
def test_stream_with_a_truncated_header_is_refused(
    cut: int, key: DataKey, keyring: Keyring
) -> None:
    sealed = _seal_stream(b"payload", key)
    _written, result = _open_stream(sealed[:cut], keyring)
    assert isinstance(result, CryptoIntegrityError), result
    assert str(result).startswith("encrypted stream: ")


def test_stream_with_a_header_and_no_chunks_is_refused(key: DataKey, keyring: Keyring) -> None:
    header, _records = _split(_seal_stream(b"payload", key))
    _written, result = _open_stream(header, keyring)
    assert isinstance(result, CryptoIntegrityError)
    assert "chunk 0 does not verify" in str(result)


def test_stream_under_an_unknown_key_names_the_key(key: DataKey) -> None:
    sealed = _seal_stream(b"payload", key)
    written, result = _open_stream(sealed, Keyring())
    assert isinstance(result, KeyUnavailableError)
    assert KEY_ID in str(result)
    assert written == b""


def test_stream_under_the_wrong_key_is_refused_before_writing(key: DataKey) -> None:
    sealed = _seal_stream(_data(3 * CHUNK), key)
    impostor = Keyring([DataKey.generate(KEY_ID)])
    written, result = _open_stream(sealed, impostor)
    assert isinstance(result, CryptoIntegrityError)
    assert "chunk 0 does not verify" in str(result)
    assert written == b""


def test_stream_refuses_an_exhausted_key_before_writing() -> None:
    key = DataKey.generate(KEY_ID, limit=1)
    _seal_stream(b"first", key)
    out = io.BytesIO()
    with pytest.raises(DataKeyExhaustedError):
        encrypt_stream(io.BytesIO(b"second"), out, key)
    assert out.getvalue() == b""


@pytest.mark.parametrize("chunk_size", [0, 15, 16 * 1024 * 1024 + 1])
def test_stream_chunk_size_is_bounded(chunk_size: int, key: DataKey) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        encrypt_stream(io.BytesIO(b"x"), io.BytesIO(), key, chunk_size=chunk_size)


def test_concurrent_seals_are_counted_exactly_and_reported_in_order() -> None:
    seen: list[int] = []
    key = DataKey(KEY_ID, bytes(16), on_seal=lambda k: seen.append(k.messages_sealed))

    def seal_many() -> None:
        for _ in range(300):
            seal_text("x", key, CONTEXT)

    threads = [threading.Thread(target=seal_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert key.messages_sealed == 2400
    assert seen == list(range(1, 2401))
