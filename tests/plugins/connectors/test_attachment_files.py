"""What an uploaded file is and what it may be called: sniffing and safe names."""

from __future__ import annotations

import pytest

from qiao.api import BadUserInput, UnsupportedMediaType
from qiao.plugins.connectors.attachments.files import checked_type, safe_name, sniff

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b"%PDF-1.7\n...", "x.bin", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n....", "photo.pdf", "image/png"),
        (b"\xff\xd8\xff\xe0....", "a.jpg", "image/jpeg"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "a.webp", "image/webp"),
        (b"PK\x03\x04....", "报价.xlsx", XLSX),
        (b"PK\x03\x04....", "archive.zip", "application/zip"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1....", "旧表.xls", "application/vnd.ms-excel"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1....", "setup.msi", "application/octet-stream"),
        ("姓名,城市\n张三,苏州\n".encode(), "客户.csv", "text/csv"),
        ("\ufeff说明".encode("utf-16"), "readme.txt", "text/plain"),
        (b"MZ\x90\x00\x03\x00", "报价.pdf", "application/octet-stream"),
        (b"text with a \x00 byte", "a.txt", "application/octet-stream"),
    ],
)
def test_the_bytes_decide_the_type(data: bytes, name: str, expected: str) -> None:
    assert sniff(data, name) == expected


def test_a_type_off_the_list_is_refused_naming_the_list() -> None:
    with pytest.raises(UnsupportedMediaType, match="allowed: application/pdf"):
        checked_type(b"GIF89a....", "a.gif", ["application/pdf"])


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("模具图纸.pdf", "模具图纸.pdf"),
        ("C:\\Users\\王\\报价单.xlsx", "报价单.xlsx"),
        ("../../etc/passwd", "passwd"),
        ("..hidden", "hidden"),
        ("合同\u202egpj.exe", "合同gpj.exe"),
        ("a\x00b\r\n.txt", "ab.txt"),
        ("e\u0301.txt", "\u00e9.txt"),
    ],
)
def test_names_are_made_safe_and_keep_their_script(given: str, kept: str) -> None:
    assert safe_name(given) == kept


def test_a_long_name_is_cut_to_255_bytes_keeping_its_extension() -> None:
    name = safe_name("图" * 200 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) <= 255 and name.startswith("图")


@pytest.mark.parametrize("given", ["", "   ", "../..", "\u200b"])
def test_a_name_that_is_nothing_is_refused(given: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        safe_name(given)
    assert refused.value.field == "filename"
