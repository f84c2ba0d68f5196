"""Decrypted values stay out of plain fields: the records service refuses the copy."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import update

from qiao.core.errors import BadUserInput
from qiao.core.records.context import Actor
from qiao.core.redaction import REDACTED, Sensitive, redacted_snapshot
from qiao.core.runtime import Runtime
from qiao.core.testing.plaintext import plaintext_hits

from .conftest import ALICE


def read(runtime: Runtime, record_id: str) -> dict:
    with runtime.db.read() as conn:
        found = runtime.records.get(conn, "patient", record_id, actor=Actor.system())
    assert found is not None
    return found


def test_opened_values_are_tagged_sensitive(qiao_runtime: Runtime, write: Callable):
    created = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    got = read(qiao_runtime, created["id"])
    assert isinstance(got["phone"], Sensitive) and isinstance(created["diagnosis"], Sensitive)
    assert not isinstance(got["name"], Sensitive)


@pytest.mark.parametrize(
    "copy",
    [
        lambda got: {"name": got["diagnosis"]},
        lambda got: {"intake": {"history": [got["diagnosis"]], "from": "门诊"}},
    ],
    ids=["plain-field", "inside-json"],
)
def test_a_decrypted_value_is_refused_in_a_plain_field(
    qiao_runtime: Runtime, write: Callable, copy: Callable
):
    created = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    got = read(qiao_runtime, created["id"])
    with pytest.raises(BadUserInput, match="plaintext of an encrypted field") as refused:
        write(lambda r, ctx: r.update(ctx, "patient", created["id"], copy(got)))
    assert "高血压" not in str(refused.value)
    assert read(qiao_runtime, created["id"])["version"] == created["version"]


def test_a_decrypted_value_may_go_into_an_encrypted_field(qiao_runtime: Runtime, write: Callable):
    a = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    got = read(qiao_runtime, a["id"])
    b = write(lambda r, ctx: r.create(ctx, "patient", {"name": "李四", "notes": got["diagnosis"]}))
    assert b["notes"] == "高血压"


def test_a_redacted_snapshot_may_be_kept_in_a_plain_field(qiao_runtime: Runtime, write: Callable):
    created = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    got = read(qiao_runtime, created["id"])
    entity = qiao_runtime.current().entity("patient")
    snapshot = redacted_snapshot(got, entity)
    kept = write(lambda r, ctx: r.update(ctx, "patient", created["id"], {"intake": snapshot}))
    assert kept["intake"]["phone"] == REDACTED and kept["intake"]["name"] == "张三"


def test_a_refused_copy_does_not_repeat_the_value_when_it_does_not_fit(
    qiao_runtime: Runtime, write: Callable
):
    created = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    got = read(qiao_runtime, created["id"])
    with pytest.raises(BadUserInput) as refused:
        write(lambda r, ctx: r.update(ctx, "patient", created["id"], {"phone": got["notes"]}))
    assert "每日复查" not in str(refused.value) and refused.value.field == "phone"


def test_plaintext_is_found_in_plain_fields_and_not_in_encrypted_ones(
    qiao_runtime: Runtime, write: Callable
):
    write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    hits = plaintext_hits(qiao_runtime, ["张三", "高血压", "11010519491231002X"])
    assert hits["patient"] == ["张三"]  # the name is not encrypted
    assert all(found == ["张三"] for found in hits.values()), hits


def test_a_value_not_yet_sealed_by_a_conversion_is_sensitive_too(
    qiao_runtime: Runtime, write: Callable
):
    created = write(lambda r, ctx: r.create(ctx, "patient", ALICE))
    table = qiao_runtime.current().table("patient")
    with qiao_runtime.db.write() as conn:  # as stored before the field was encrypted
        conn.execute(update(table).where(table.c.id == created["id"]).values(diagnosis="糖尿病"))
    qiao_runtime.records.encryption.converting = frozenset({("patient", "diagnosis")})
    got = read(qiao_runtime, created["id"])
    assert got["diagnosis"] == "糖尿病" and isinstance(got["diagnosis"], Sensitive)
