"""Entity tables are built once per set of declarations, not once per metadata version."""

from __future__ import annotations

from qiao.core.catalog import Catalog
from qiao.core.metadata.registry import Registry
from qiao.core.schema.tables import Tables

from .test_registry import ACCOUNT, CONTACT, USER, ent, fld, rel


def test_snapshots_declaring_the_same_entities_share_their_tables() -> None:
    first = Registry.build([USER, ACCOUNT, CONTACT], version=1)
    # A later version (a setting changed) and another runtime's snapshot: new objects.
    later = Registry.build([CONTACT, USER, ACCOUNT], version=2)
    assert later is not first and later.declarations == first.declarations
    assert Catalog.of(later).tables is Catalog.of(first).tables
    assert Tables.of(first)["contact"].c.account_id.foreign_keys


def test_a_changed_declaration_gets_tables_of_its_own() -> None:
    before = Registry.build([USER, ACCOUNT, CONTACT])
    widened = ent("contact", "contacts", fld("name"), fld("wechat"), rel("account", "account"))
    after = Registry.build([USER, ACCOUNT, widened])
    assert Tables.of(after) is not Tables.of(before)
    assert "wechat" in Tables.of(after)["contact"].c
    assert "wechat" not in Tables.of(before)["contact"].c
