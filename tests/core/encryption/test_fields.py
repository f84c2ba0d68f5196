"""Encrypted fields through the records service: sealed at rest, opened on read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from qiao.core.crypto import CryptoIntegrityError, is_sealed, sealed_key_id
from qiao.core.errors import BadUserInput
from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime

from .conftest import ALICE

ENCRYPTED = ("phone", "email", "id_number", "diagnosis", "notes")


def stored(runtime: Runtime, record_id: str) -> dict[str, Any]:
    table = runtime.current().table("patient")
    with runtime.db.read() as conn:
        return dict(conn.execute(select(table).where(table.c.id == record_id)).one()._mapping)


def test_values_are_sealed_at_rest_and_opened_on_read(qiao_runtime: Runtime, write: Callable):
    created = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    assert created["phone"] == "+8613800138000"  # normalised before sealing
    assert created["email"] == "Zhang.San@example.cn"
    assert created["diagnosis"] == "高血压"
    row = stored(qiao_runtime, created["id"])
    for name in ENCRYPTED:
        assert is_sealed(row[name]), name
        assert sealed_key_id(row[name]) == "dek-patient-1"
    assert "高血压" not in row["diagnosis"] and "13800138000" not in row["phone"]
    assert len(row["phone_bidx"]) == 64 and "diagnosis_bidx" not in row
    with qiao_runtime.db.read() as conn:
        got = qiao_runtime.records.get(conn, "patient", created["id"], actor=Actor.system())
        page = qiao_runtime.records.list(conn, "patient", actor=Actor.system())
    assert got is not None and {k: got[k] for k in ENCRYPTED} == {k: created[k] for k in ENCRYPTED}
    assert "phone_bidx" not in got
    assert page.records[0]["notes"] == "每日复查血压。"


def test_update_reseals_changed_values_only(qiao_runtime: Runtime, write: Callable):
    created = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    before = stored(qiao_runtime, created["id"])
    updated = write(lambda r, ctx: r.update(ctx, "patient", created["id"], {"notes": "出院"}))
    after = stored(qiao_runtime, created["id"])
    assert updated["notes"] == "出院" and updated["diagnosis"] == "高血压"
    assert after["diagnosis"] == before["diagnosis"] and after["notes"] != before["notes"]
    unchanged = write(
        lambda r, ctx: r.update(ctx, "patient", created["id"], {"phone": "+86 138-0013-8000"})
    )
    assert unchanged["version"] == updated["version"]  # same value, nothing written


def test_a_value_copied_to_another_record_does_not_open(qiao_runtime: Runtime, write: Callable):
    a = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    b = write(lambda r, ctx: r.create(ctx, "patient", {"name": "李四", "diagnosis": "感冒"}))
    table = qiao_runtime.current().table("patient")
    secret = stored(qiao_runtime, a["id"])["diagnosis"]
    with qiao_runtime.db.write() as conn:
        conn.execute(update(table).where(table.c.id == b["id"]).values(diagnosis=secret))
    with qiao_runtime.db.read() as conn, pytest.raises(CryptoIntegrityError) as caught:
        qiao_runtime.records.get(conn, "patient", b["id"], actor=Actor.system())
    assert f"patient.diagnosis of record {b['id']}" in str(caught.value)
    assert "copied from another record or field" in str(caught.value)


def test_a_value_moved_to_another_field_or_altered_does_not_open(
    qiao_runtime: Runtime, write: Callable
):
    a = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    table = qiao_runtime.current().table("patient")
    row = stored(qiao_runtime, a["id"])
    token = row["notes"]
    altered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for column, value in (("diagnosis", row["notes"]), ("notes", altered)):
        with qiao_runtime.db.write() as conn:
            conn.execute(update(table).where(table.c.id == a["id"]).values({column: value}))
        with qiao_runtime.db.read() as conn, pytest.raises(CryptoIntegrityError):
            qiao_runtime.records.get(conn, "patient", a["id"], actor=Actor.system())
        with qiao_runtime.db.write() as conn:
            conn.execute(update(table).where(table.c.id == a["id"]).values({column: row[column]}))


def test_a_page_opens_each_value_under_its_key_and_record(qiao_runtime: Runtime, write: Callable):
    def create(n: int) -> dict[str, Any]:
        return write(lambda r, ctx: r.create(ctx, "patient", {"name": f"p{n}", "notes": f"n{n}"}))

    made = [create(n) for n in range(3)]
    with qiao_runtime.db.write() as conn:
        qiao_runtime.records.encryption.keys.rotate_data_key(conn, "patient")
    made += [create(n) for n in range(3, 6)]
    expected = {m["id"]: f"n{n}" for n, m in enumerate(made)}
    assert {sealed_key_id(stored(qiao_runtime, i)["notes"]) for i in expected} == {
        "dek-patient-1",
        "dek-patient-2",
    }

    def page() -> dict[str, Any]:
        with qiao_runtime.db.read() as conn:
            records = qiao_runtime.records.list(conn, "patient", actor=Actor.system()).records
        return {r["id"]: r["notes"] for r in records}

    assert page() == expected  # the values this process sealed, remembered
    assert page() == expected  # opened from what is stored
    copied, victim = made[1]["id"], made[4]["id"]
    table = qiao_runtime.current().table("patient")
    with qiao_runtime.db.write() as conn:
        conn.execute(
            update(table)
            .where(table.c.id == victim)
            .values(notes=stored(qiao_runtime, copied)["notes"])
        )
    with pytest.raises(CryptoIntegrityError) as caught:
        page()
    assert str(caught.value).startswith(f"patient.notes of record {victim}: ")
    assert "under data key 'dek-patient-1'" in str(caught.value)


def test_plaintext_in_an_encrypted_column_is_refused(qiao_runtime: Runtime, write: Callable):
    a = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    table = qiao_runtime.current().table("patient")
    with qiao_runtime.db.write() as conn:
        conn.execute(update(table).where(table.c.id == a["id"]).values(diagnosis="planted"))
    with qiao_runtime.db.read() as conn, pytest.raises(CryptoIntegrityError, match="not sealed"):
        qiao_runtime.records.get(conn, "patient", a["id"], actor=Actor.system())


def test_eq_and_in_use_the_blind_index_after_normalising(qiao_runtime: Runtime, write: Callable):
    a = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    write(lambda r, ctx: r.create(ctx, "patient", {"name": "李四", "phone": "13900139000"}))
    records = qiao_runtime.records

    def names(spec: dict[str, Any]) -> list[str]:
        with qiao_runtime.db.read() as conn:
            return [
                r["name"]
                for r in records.list(conn, "patient", filter=spec, actor=Actor.system()).records
            ]

    assert names({"phone": {"eq": "+86 138 0013 8000"}}) == ["张三"]
    assert names({"phone": {"eq": "１３８００１３８０００"}}) == ["张三"]  # full-width digits
    assert names({"email": {"eq": "zhang.san@EXAMPLE.cn"}}) == ["张三"]
    assert names({"id_number": {"in": ["11010519491231002X", "x"]}}) == ["张三"]
    assert sorted(names({"phone": {"in": ["13900139000", "13800138000"]}})) == ["张三", "李四"]
    assert names({"phone": {"eq": "13700137000"}}) == []
    assert names({"diagnosis": {"is_null": True}}) == ["李四"]
    assert a["id"]


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"phone": {"contains": "138"}}, "only eq and in work"),
        ({"phone": {"neq": "13800138000"}}, "only eq and in work"),
        ({"diagnosis": {"eq": "高血压"}}, "declare it searchable: exact"),
    ],
)
def test_other_operators_on_encrypted_fields_are_refused(
    qiao_runtime: Runtime, spec: dict[str, Any], why: str
):
    with qiao_runtime.db.read() as conn, pytest.raises(BadUserInput) as caught:
        qiao_runtime.records.list(conn, "patient", filter=spec, actor=Actor.system())
    assert "stored encrypted" in caught.value.message and why in caught.value.message


def test_ordering_by_an_encrypted_field_is_refused(qiao_runtime: Runtime):
    with qiao_runtime.db.read() as conn, pytest.raises(BadUserInput, match="stored encrypted"):
        qiao_runtime.records.list(
            conn, "patient", order_by=[{"field": "phone"}], actor=Actor.system()
        )


def test_an_invalid_phone_is_refused_before_anything_is_written(
    qiao_runtime: Runtime, write: Callable
):
    with pytest.raises(BadUserInput):
        write(lambda r, ctx: r.create(ctx, "patient", {"name": "x", "phone": "not a phone"}))
    with qiao_runtime.db.read() as conn:
        assert qiao_runtime.records.list(conn, "patient", actor=Actor.system()).records == []


def test_a_forged_blind_index_does_not_return_the_row(qiao_runtime: Runtime, write: Callable):
    alice = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    bob = write(lambda r, ctx: r.create(ctx, "patient", {"name": "李四", "phone": "13900139000"}))
    table = qiao_runtime.current().table("patient")
    with qiao_runtime.db.write() as conn:  # Bob's index replaced by Alice's, by hand
        conn.execute(
            update(table)
            .where(table.c.id == bob["id"])
            .values(phone_bidx=stored(qiao_runtime, alice["id"])["phone_bidx"])
        )

    def found(spec: dict[str, Any]) -> tuple[list[str], int | None]:
        with qiao_runtime.db.read() as conn:
            page = qiao_runtime.records.list(
                conn, "patient", filter=spec, with_total=True, actor=Actor.system()
            )
        return [r["name"] for r in page.records], page.total_count

    assert found({"phone": {"eq": "13800138000"}}) == (["张三"], 1)
    assert found({"phone": {"eq": "13900139000"}}) == ([], 0)
    assert found({"or": [{"phone": {"eq": "13800138000"}}, {"name": {"eq": "王五"}}]}) == (
        ["张三"],
        1,
    )
    assert found({"not": {"phone": {"eq": "13800138000"}}}) == (["李四"], 1)
