"""The one redaction path: sensitive values, scrubbing, snapshots, changes and logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace

import pytest

from qiao.core.metadata.model import EntityDef
from qiao.core.permissions.rights import FieldAccess
from qiao.core.redaction import (
    REDACTED,
    LogScrubber,
    Sensitive,
    changes_entry,
    contains_sensitive,
    install_log_scrubber,
    redacted_change,
    redacted_changes,
    redacted_snapshot,
    scrub,
    scrub_text,
)

PHONE = Sensitive("+8613800138000")


def patient() -> EntityDef:
    return EntityDef.model_validate(
        {
            "name": "patient",
            "plural": "patients",
            "label": {"en": "Patient"},
            "fields": [
                {"name": "name", "type": "string", "label": {"en": "Name"}},
                {"name": "phone", "type": "phone", "encrypted": True, "label": {"en": "Phone"}},
                {"name": "fee", "type": "decimal", "label": {"en": "Fee"}},
                {"name": "intake", "type": "json", "label": {"en": "Intake"}},
            ],
        }
    )


def test_a_sensitive_value_is_a_string_whose_repr_is_redacted():
    assert PHONE == "+8613800138000" and PHONE.startswith("+86")
    assert repr(PHONE) == repr(REDACTED) and f"{PHONE!r}" == repr(REDACTED)
    assert "13800138000" not in repr({"phone": PHONE})


def test_contains_and_scrub_look_inside_json_values():
    value = {"a": [1, {"b": PHONE}], "c": (PHONE,), "d": "plain"}
    assert contains_sensitive(value) and contains_sensitive({PHONE: 1})
    assert not contains_sensitive({"a": ["+8613800138000"]})
    assert scrub(value) == {"a": [1, {"b": REDACTED}], "c": [REDACTED], "d": "plain"}
    assert scrub(PHONE) == REDACTED and scrub(Decimal("1.5")) == Decimal("1.5")


def test_a_snapshot_keeps_that_an_encrypted_field_had_a_value_not_which():
    record = {"id": "x", "name": "张三", "phone": PHONE, "fee": Decimal("12.50"), "intake": None}
    snapshot = redacted_snapshot(record, patient())
    assert snapshot == {"name": "张三", "phone": REDACTED, "fee": "12.50"}
    assert not contains_sensitive(snapshot)


def test_changes_of_hidden_fields_say_only_that_they_changed():
    entity = patient()
    phone, name = entity.field("phone"), entity.field("name")
    assert changes_entry(phone, None, PHONE) == redacted_change()
    assert changes_entry(name, "a", "b") == ("a", "b")
    assert changes_entry(name, "a", "b", hidden=True) == redacted_change()
    intake = entity.field("intake")
    assert changes_entry(intake, None, {"phone": PHONE}) == (None, {"phone": REDACTED})


def test_a_writes_changes_are_redacted_once_for_every_copy_until_they_change():
    entity = patient()
    changes = {"name": (None, "张三"), "phone": (None, PHONE), "intake": (None, [PHONE])}
    first = redacted_changes(entity, changes)
    assert first == {
        "name": (None, "张三"),
        "phone": redacted_change(),
        "intake": (None, [REDACTED]),
    }
    assert redacted_changes(entity, changes) is first  # the second copy reuses the first's
    assert redacted_changes(entity, dict(changes)) is not first  # another write's changes
    changes["fee"] = (None, Decimal("3.50"))
    again = redacted_changes(entity, changes)
    assert again is not first and again["fee"] == (None, Decimal("3.50"))


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect to postgresql://qiao:s3cr3t-pw@db:5432/qiao", "s3cr3t-pw"),
        ("Authorization: Bearer qiao_AbCdEfGhIjKlMnOpQrStUvWxYz012345", "AbCdEfGhIjKlMnOp"),
        ("token qiao_AbCdEfGhIjKlMnOpQrStUvWxYz012345 refused", "AbCdEfGhIjKlMnOp"),
        ("password=hunter2hunter2 user=wang", "hunter2hunter2"),
        ('{"secret": "whsec_abcdef"}', "whsec_abcdef"),
    ],
)
def test_secrets_are_scrubbed_from_text(text: str, secret: str):
    cleaned = scrub_text(text)
    assert secret not in cleaned and REDACTED in cleaned


def test_the_log_scrubber_redacts_sensitive_arguments_messages_and_tracebacks():
    scrubber = LogScrubber()

    def record(msg: object, args: tuple, exc: bool = False) -> str:
        exc_info = None
        if exc:
            try:
                raise ValueError(f"bad url postgresql://u:topsecret@h/{PHONE}")
            except ValueError as error:
                exc_info = (ValueError, error, error.__traceback__)
        made = logging.LogRecord("qiao.test", logging.INFO, __file__, 1, msg, args, exc_info)
        assert scrubber.filter(made)
        return logging.Formatter().format(made)

    assert "13800138000" not in record("phone %s", (PHONE,))
    assert "13800138000" not in record("phone %(p)s", ({"p": PHONE},))
    assert record(PHONE, ()) == REDACTED
    assert "topsecret" not in record("failed", (), exc=True)
    assert record("plain %s", ("text",)) == "plain text"


@pytest.fixture
def restored_factory() -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)


@pytest.mark.usefixtures("restored_factory")
def test_installed_scrubber_reaches_every_handler(caplog: pytest.LogCaptureFixture):
    install_log_scrubber()
    install_log_scrubber()  # idempotent
    with caplog.at_level(logging.INFO, logger="qiao.test"):
        logging.getLogger("qiao.test").info("opened %s for %s", PHONE, "postgresql://a:pw1234@h")
    assert "13800138000" not in caplog.text and "pw1234" not in caplog.text


def test_prose_about_tokens_is_left_alone():
    text = "invalid token: signature mismatch; the password was wrong"
    assert scrub_text(text) == text


def test_a_snapshot_for_a_reader_leaves_out_what_they_may_not_read():
    hidden = {"fee"}
    reader = SimpleNamespace(
        is_unrestricted=False,
        field_access=lambda entity, field: FieldAccess.NONE if field in hidden else "read",
    )
    record = {"name": "张三", "fee": Decimal("12.50")}
    assert redacted_snapshot(record, patient(), reader) == {"name": "张三", "fee": REDACTED}
