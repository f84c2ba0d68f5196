"""De-duplication when a deployment stores phones and e-mail addresses encrypted.

The CRM's manifest is swapped for a copy whose lead and contact phones and
e-mail addresses are ``encrypted: true, searchable: exact``: their columns then
hold ciphertext, and duplicates must still be found, one lead at a time and in
imports, through the blind indexes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, update

import qiao.plugins.crm
from qiao.core.crypto import is_sealed
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.plugins.leads.conversion import convert_lead
from qiao.plugins.leads.importing.runner import Importer

from .test_import import xlsx

ENCRYPTED = frozenset(
    {("lead", "mobile"), ("lead", "email"), ("contact", "mobile"), ("contact", "email")}
)


class EncryptedContacts:
    """Names the deployment's variant, so its test databases are not shared with plain ones."""

    __name__ = "encrypted_contacts"


def encrypted_manifest(folder: Path, fields: frozenset[tuple[str, str]] = ENCRYPTED) -> Path:
    """The CRM manifest with ``fields`` (the contact details of leads and contacts) encrypted."""
    data = yaml.safe_load(qiao.plugins.crm.MANIFESTS[0].read_text(encoding="utf-8"))
    for entity in data["entities"]:
        for field in entity["fields"]:
            if (entity["name"], field["name"]) in fields:
                field.pop("indexed", None)
                field.update(encrypted=True, searchable="exact")
    path = folder / f"crm-encrypted-{len(fields)}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encrypted_manifest(tmp_path_factory.mktemp("crm"))


@pytest.fixture
def qiao_extra_plugins(manifest: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sequence[Any]]:
    crm = qiao.plugins.crm
    monkeypatch.setattr(crm, "MANIFESTS", (manifest, *crm.MANIFESTS[1:]))
    yield [EncryptedContacts()]


def stored(runtime: Runtime, entity: str, column: str) -> list[Any]:
    table = runtime.current().table(entity)
    with runtime.db.read() as conn:
        return [value for (value,) in conn.execute(select(table.c[column]))]


def test_duplicates_are_found_through_blind_indexes(
    qiao_runtime: Runtime, create: Callable[..., dict[str, Any]]
) -> None:
    first = create("lead", name="林晓燕", mobile="13857412096")
    contact = create("contact", name="叶明", email="yeming@donghai.example.com")
    assert all(is_sealed(v) for v in stored(qiao_runtime, "lead", "mobile"))
    lead = create(
        "lead",
        name="林小姐",
        mobile="+86 138-5741-2096",
        email="YeMing@DongHai.example.com",
    )
    found = {(m["entity"], m["id"], m["by"]) for m in lead["duplicate_matches"]}
    assert found == {("lead", first["id"], "phone"), ("contact", contact["id"], "email")}
    assert lead["duplicate_of_id"] == first["id"]
    other = create("lead", name="陌生人", mobile="13900000001")
    assert other["duplicate_matches"] is None


def test_imports_find_stored_and_earlier_rows_by_blind_index(
    qiao_runtime: Runtime, create: Callable[..., dict[str, Any]]
) -> None:
    create("contact", name="周海峰", mobile="13862231456")
    rows = [
        ["周先生", "+86 138 6223 1456", "苏州精工", None, None, None, None, None],
        ["徐丽", "13962578803", "宁波东海", None, None, "xu@dh.example.com", None, None],
        ["徐女士", "139 6257 8803", None, None, None, None, None, "再次登记"],
    ]
    outcome = Importer(qiao_runtime, Actor.system(), duplicates="keep").run(
        xlsx(rows), "a.xlsx", "lead"
    )
    assert (outcome.created, outcome.duplicates) == (3, 2)
    reasons = sorted(p.reason for p in outcome.problems if p.kind == "duplicate")
    assert reasons[0].startswith("same phone as contact")
    assert reasons[1].startswith("same phone as row")
    assert all(is_sealed(v) for v in stored(qiao_runtime, "lead", "mobile"))


def test_lookups_keep_working_while_the_index_key_rotates(
    qiao_runtime: Runtime, create: Callable[..., dict[str, Any]]
) -> None:
    first = create("lead", name="林晓燕", mobile="13857412096")
    keys = qiao_runtime.records.encryption.keys
    with qiao_runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        keys.rotate_index_key(ctx.connection, "lead")
    again = create("lead", name="林小姐", mobile="13857412096")
    assert {m["id"] for m in again["duplicate_matches"]} == {first["id"]}


def test_converting_a_lead_finds_the_account_contact_with_the_same_encrypted_mobile(
    qiao_runtime: Runtime, create: Callable[..., dict[str, Any]]
) -> None:
    account = create("account", name="东海精密")
    contact = create("contact", name="叶明", mobile="13857412096", account=account["id"])
    lead = create("lead", name="叶明", mobile="+86 138 5741 2096", company="东海精密")
    with qiao_runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        done = convert_lead(
            qiao_runtime.records,
            ctx,
            lead["id"],
            account_id=account["id"],
            create_opportunity=False,
        )
    assert (done.contact["id"], done.contact_created) == (contact["id"], False)


def test_a_forged_blind_index_is_no_duplicate(
    qiao_runtime: Runtime, create: Callable[..., dict[str, Any]]
) -> None:
    contact = create("contact", name="周海峰", mobile="13862231456")
    records = qiao_runtime.records
    mobile = qiao_runtime.current().entity("contact").field("mobile")
    table = qiao_runtime.current().table("contact")
    with qiao_runtime.db.write() as conn:  # the index of another number, written by hand
        forged = records.encryption.index(conn, "contact", mobile, "13700001111")
        conn.execute(update(table).where(table.c.id == contact["id"]).values(mobile_bidx=forged))
    lead = create("lead", name="陌生人", mobile="13700001111")
    assert lead["duplicate_matches"] is None
    rows = [["路人", "137 0000 1111", None, None, None, None, None, None]]
    outcome = Importer(qiao_runtime, Actor.system(), duplicates="skip").run(
        xlsx(rows), "b.xlsx", "lead"
    )
    assert (outcome.created, outcome.duplicates) == (0, 1)
    (problem,) = outcome.problems
    assert problem.reason == f"same phone as lead {lead['id']} (陌生人)"  # not the contact
