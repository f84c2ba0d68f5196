"""The registry: entities checked as a whole, relations resolved in both directions."""

from __future__ import annotations

from typing import Any

import pytest

from qiao.core.errors import MetadataError
from qiao.core.metadata.model import EntityDef, FieldDef
from qiao.core.metadata.registry import Extension, Registry, camel, type_name

LABEL = {"en": "Label", "zh-CN": "标签"}


def fld(name: str, type_: str = "string", **options: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "label": LABEL, **options}


def ent(name: str, plural: str, *fields: dict[str, Any], **options: Any) -> EntityDef:
    return EntityDef.model_validate(
        {"name": name, "plural": plural, "label": LABEL, "fields": list(fields), **options}
    )


def rel(name: str, target: str, **options: Any) -> dict[str, Any]:
    return fld(name, "relation", target=target, **options)


USER = ent("user", "users", fld("username"))
ACCOUNT = ent(
    "account",
    "accounts",
    fld("name"),
    rel("owner", "user", inverse="owned_accounts"),
    rel("parent", "account", inverse="subsidiaries"),
)
CONTACT = ent("contact", "contacts", fld("name"), rel("account", "account"))


def test_graphql_names_of_entities_and_fields() -> None:
    assert type_name("sales_order") == "SalesOrder"
    assert type_name("account") == "Account"
    assert camel("occurred_at") == "occurredAt"
    assert camel("owner_id") == "ownerId"
    assert camel("name") == "name"


def test_reverse_relations_default_to_the_plural_and_honour_inverse() -> None:
    registry = Registry.build([USER, ACCOUNT, CONTACT])
    contacts = registry.reverse("account", "contacts")
    assert contacts is not None
    assert (contacts.entity, contacts.field.name) == ("contact", "account")
    owned = registry.reverse("user", "owned_accounts")
    assert owned is not None and owned.entity == "account"
    assert registry.reverse("account", "subsidiaries") is not None
    assert registry.reverse("account", "accounts") is None
    assert {r.name for r in registry.referencing("account")} == {"contacts", "subsidiaries"}
    assert registry.referencing("contact") == ()


def test_reverse_labels_come_from_inverse_label_then_plural_label() -> None:
    plural_labelled = ent(
        "contact",
        "contacts",
        rel("account", "account"),
        plural_label={"en": "Contacts", "zh-CN": "联系人"},
    )
    inverse_labelled = ent(
        "note",
        "notes",
        rel("account", "account", inverse_label={"en": "Notes", "zh-CN": "备注"}),
    )
    registry = Registry.build([USER, ACCOUNT, plural_labelled, inverse_labelled])
    contacts = registry.reverse("account", "contacts")
    notes = registry.reverse("account", "notes")
    assert contacts is not None and contacts.label.text("zh-CN") == "联系人"
    assert notes is not None and notes.label.text("zh-CN") == "备注"


def test_lookups() -> None:
    registry = Registry.build([USER, ACCOUNT, CONTACT], version=7)
    assert registry.version == 7
    assert registry.entity("contact") is CONTACT
    by_plural = registry.by_plural("accounts")
    assert by_plural is not None and by_plural.name == "account"
    assert registry.by_plural("account") is None
    with pytest.raises(MetadataError, match="unknown entity 'nope'"):
        registry.entity("nope")


def test_a_relation_to_an_unknown_entity_is_refused() -> None:
    with pytest.raises(MetadataError, match=r"contact.account points at unknown entity 'account'"):
        Registry.build([CONTACT])


def test_an_entity_declared_twice_names_both_sources() -> None:
    first = USER.model_copy(update={"source": "core"})
    second = USER.model_copy(update={"source": "hr"})
    with pytest.raises(MetadataError, match="'user' is declared by both 'core' and 'hr'"):
        Registry.build([first, second])


def test_a_reverse_name_clashing_with_a_field_is_refused() -> None:
    account = ent("account", "accounts", fld("contacts", "integer"))
    with pytest.raises(MetadataError, match=r"account.contacts \(from contact.account\) clashes"):
        Registry.build([account, CONTACT])


def test_a_reverse_name_clashing_with_a_relation_column_is_refused() -> None:
    account = ent("account", "accounts", rel("parent", "account", inverse="children"))
    clashing = ent("child", "children_list", rel("account", "account", inverse="parent_id"))
    with pytest.raises(MetadataError, match="clashes with a field"):
        Registry.build([account, clashing])


def test_two_relations_exposing_one_reverse_name_are_refused() -> None:
    deal = ent("deal", "deals", rel("buyer", "account"), rel("seller", "account"))
    with pytest.raises(MetadataError, match=r"both expose account\.deals"):
        Registry.build([USER, ACCOUNT, deal])
    named = ent(
        "deal",
        "deals",
        rel("buyer", "account", inverse="purchases"),
        rel("seller", "account", inverse="sales"),
    )
    registry = Registry.build([USER, ACCOUNT, named])
    assert {r.name for r in registry.referencing("account")} == {
        "purchases",
        "sales",
        "subsidiaries",
    }


def test_a_self_relation_without_inverse_uses_the_plural() -> None:
    team = ent("team", "teams", rel("parent", "team"))
    registry = Registry.build([team])
    assert registry.reverse("team", "teams") is not None


def test_two_entities_with_one_plural_are_refused() -> None:
    person = ent("person", "people")
    human = ent("human", "people")
    with pytest.raises(MetadataError, match="API name 'people' of entity 'human' clashes"):
        Registry.build([person, human])


def test_a_plural_equal_to_another_entity_name_is_refused() -> None:
    datum = ent("datum", "data")
    data = ent("data", "data_sets")
    with pytest.raises(MetadataError, match=r"API name 'data'.* clashes with"):
        Registry.build([datum, data])


def test_extensions_add_fields_to_other_plugins_entities() -> None:
    extra = Extension(
        entity="account",
        fields=(
            FieldDef.model_validate(fld("dealer_level", "integer", min=1, max=5)),
            FieldDef.model_validate(rel("region_manager", "user", inverse="managed_accounts")),
        ),
        source="manufacturing_dealers",
    )
    registry = Registry.build([USER, ACCOUNT], [extra])
    account = registry.entity("account")
    assert account.field("dealer_level") is not None
    assert registry.reverse("user", "managed_accounts") is not None
    assert registry.reverse("user", "owned_accounts") is not None


def test_extending_an_unknown_entity_is_refused() -> None:
    extra = Extension(
        entity="invoice", fields=(FieldDef.model_validate(fld("code")),), source="erp"
    )
    with pytest.raises(MetadataError, match="'erp' extends unknown entity 'invoice'"):
        Registry.build([USER], [extra])


def test_an_extension_may_not_redeclare_a_field() -> None:
    extra = Extension(
        entity="user", fields=(FieldDef.model_validate(fld("username")),), source="hr"
    )
    with pytest.raises(
        MetadataError, match=r"'hr' adds field user\.username, which already exists"
    ):
        Registry.build([USER], [extra])


def test_an_extension_is_checked_with_the_entity() -> None:
    extra = Extension(
        entity="user", fields=(FieldDef.model_validate(fld("username_id")),), source="x"
    )
    user = ent("user", "users", rel("username", "user", inverse="aliases"))
    with pytest.raises(MetadataError) as caught:
        Registry.build([user], [extra])
    assert caught.value.message == "'x' extending 'user': field name 'username_id' is used twice"


def test_an_extension_whose_relation_clashes_is_refused() -> None:
    extra = Extension(
        entity="user",
        fields=(FieldDef.model_validate(fld("owned_accounts", "integer")),),
        source="crm_extras",
    )
    with pytest.raises(MetadataError, match=r"user\.owned_accounts .* clashes with a field"):
        Registry.build([USER, ACCOUNT], [extra])
