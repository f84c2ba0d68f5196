"""Field and entity declarations: what a manifest, a plugin or an admin may declare."""

from __future__ import annotations

import decimal
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from qiao.core.metadata.model import (
    MAX_DECIMAL_PRECISION,
    MAX_NAME_LENGTH,
    NAME_RE,
    RESERVED_NAMES,
    SYSTEM_FIELDS,
    EntityDef,
    EnumValue,
    FieldDef,
    FieldType,
    Label,
    OnDelete,
    check_name,
)
from qiao.core.metadata.registry import camel, type_name

LABEL = {"en": "Label", "zh-CN": "标签"}


def field(name: str = "x", type_: str = "string", **options: Any) -> FieldDef:
    return FieldDef.model_validate({"name": name, "type": type_, "label": LABEL, **options})


def entity(name: str = "thing", plural: str = "things", **options: Any) -> EntityDef:
    return EntityDef.model_validate({"name": name, "plural": plural, "label": LABEL, **options})


def refused(make: Any, *fragments: str) -> str:
    """Call ``make``; it must fail validation with a message containing every fragment."""
    with pytest.raises(ValidationError) as caught:
        make()
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# -- Names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "name", "close_date", "line2", "x9_y8", "a" * MAX_NAME_LENGTH, "unified_code"]
)
def test_snake_case_names_are_accepted(name: str) -> None:
    assert check_name(name, "field") == name
    assert field(name).name == name


@pytest.mark.parametrize(
    "name",
    [
        "CamelCase",
        "camelCase",
        "9lives",
        "_private",
        "trailing_",
        "double__underscore",
        "has-dash",
        "has space",
        "word_2",
        "名称",
        "",
        "a" * (MAX_NAME_LENGTH + 1),
    ],
)
def test_names_that_are_not_snake_case_are_refused(name: str) -> None:
    refused(lambda: field(name), "must be snake_case")
    refused(lambda: entity(name, "somethings"), "must be snake_case")


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES))
def test_reserved_names_are_refused_for_fields(name: str) -> None:
    refused(lambda: field(name), f"{name!r} is reserved")


def test_system_columns_are_reserved() -> None:
    assert {"id", "created_at", "updated_at", "version"} <= SYSTEM_FIELDS <= RESERVED_NAMES


@pytest.mark.parametrize("name", ["qiao", "qiao_setting", "qiaox"])
def test_names_starting_with_qiao_belong_to_the_kernel(name: str) -> None:
    refused(lambda: entity(name, "many_" + name), "is reserved")
    refused(lambda: field(name), "is reserved")


def test_entity_plural_obeys_the_same_rules() -> None:
    refused(lambda: entity("person", "People"), "must be snake_case")
    refused(lambda: entity("person", "person"), "plural must differ")
    assert entity("person", "people").plural == "people"


_WORD = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
_NAMES = (
    st.lists(_WORD, min_size=1, max_size=5)
    .map("_".join)
    .filter(lambda n: len(n) <= MAX_NAME_LENGTH)
)


def _uncamel(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), name)


@given(_NAMES)
def test_every_snake_name_round_trips_through_its_graphql_name(name: str) -> None:
    """camelCase is reversible for valid names, so two fields never share a GraphQL name."""
    assert NAME_RE.match(name)
    assert _uncamel(camel(name)) == name
    assert _uncamel(type_name(name)[0].lower() + type_name(name)[1:]) == name


@given(_NAMES, _NAMES)
def test_distinct_names_have_distinct_graphql_names(a: str, b: str) -> None:
    assert (camel(a) == camel(b)) == (a == b)
    assert (type_name(a) == type_name(b)) == (a == b)


# -- Labels and picklist values -------------------------------------------------------------


def test_labels_need_one_language_and_fall_back_to_the_other() -> None:
    both = Label.model_validate({"en": "Account", "zh-CN": "客户"})
    assert both.text("en") == "Account"
    assert both.text("zh-CN") == "客户"
    assert both.as_data() == {"en": "Account", "zh-CN": "客户"}
    only_chinese = Label.model_validate({"zh-CN": "商机"})
    assert only_chinese.text("en") == "商机"
    assert Label.model_validate({"en": "Deal"}).text("zh-CN") == "Deal"
    refused(lambda: Label.model_validate({}), "a label needs 'en' or 'zh-CN'")
    refused(lambda: Label.model_validate({"en": ""}), "at least 1 character")
    refused(lambda: Label.model_validate({"en": "A", "fr": "Compte"}), "fr")


def test_a_field_needs_a_label() -> None:
    refused(lambda: FieldDef.model_validate({"name": "x", "type": "string"}), "label")


@pytest.mark.parametrize("value", ["CLOSED_WON", "zh_CN", "A", "x1"])
def test_picklist_values_are_identifiers(value: str) -> None:
    assert EnumValue(value=value).value == value


@pytest.mark.parametrize("value", ["closed won", "1ST", "_A", "A-B", "true", "null", "赢单", ""])
def test_picklist_values_that_are_not_identifiers_are_refused(value: str) -> None:
    refused(lambda: EnumValue(value=value), "must be an identifier")


def test_picklist_colours_are_hex() -> None:
    assert EnumValue(value="A", color="#12abEF").color == "#12abEF"
    refused(lambda: EnumValue(value="A", color="red"), "color")


def test_enum_fields_carry_their_values_with_labels() -> None:
    stage = field(
        "stage",
        "enum",
        default="NEW",
        values=[
            {"value": "NEW", "label": {"en": "New", "zh-CN": "新建"}},
            {"value": "WON", "label": {"en": "Won", "zh-CN": "赢单"}},
        ],
    )
    assert stage.enum_values == ("NEW", "WON")
    assert stage.values[1].label is not None
    assert stage.values[1].label.text("zh-CN") == "赢单"


def test_enum_fields_need_distinct_values_and_a_declared_default() -> None:
    refused(lambda: field("stage", "enum"), "an enum field needs 'values'")
    refused(
        lambda: field("stage", "enum", values=[{"value": "A"}, {"value": "A"}]),
        "picklist value 'A' repeats",
    )
    refused(
        lambda: field("stage", "enum", values=[{"value": "A"}], default="B"),
        "default: 'B' is not one of: A",
    )
    refused(lambda: field("x", "string", values=[{"value": "A"}]), "'values' apply to enum")


def test_picklist_values_differing_only_in_case_are_refused_naming_both() -> None:
    # GraphQL names both WON, so a client could not tell them apart.
    refused(
        lambda: field("stage", "enum", values=[{"value": v} for v in ("won", "NEW", "WON")]),
        "picklist values 'won' and 'WON' differ only in case; both would be named 'WON'",
    )
    assert field("stage", "enum", values=[{"value": "won"}, {"value": "lost"}]).enum_values == (
        "won",
        "lost",
    )


# -- Options per type -----------------------------------------------------------------------


@pytest.mark.parametrize("type_", [t.value for t in FieldType if t not in {"enum", "relation"}])
def test_every_plain_type_can_be_declared_with_no_options(type_: str) -> None:
    assert field("x", type_).type is FieldType(type_)


def test_every_issue_type_exists() -> None:
    expected = {
        "string",
        "text",
        "integer",
        "decimal",
        "boolean",
        "date",
        "datetime",
        "enum",
        "email",
        "phone",
        "url",
        "json",
        "relation",
    }
    assert {t.value for t in FieldType} == expected


def test_unknown_types_and_options_are_refused() -> None:
    refused(lambda: field("x", "money"), "type")
    refused(lambda: field("x", "string", maxlength=3), "maxlength", "Extra inputs")


def test_string_limits_apply_to_string_types_only() -> None:
    assert field("x", "string", max_length=10, min_length=2).effective_max_length == 10
    assert field("x", "text").effective_max_length is None
    assert field("x", "string").effective_max_length == 255
    assert field("x", "email").effective_max_length == 254
    refused(lambda: field("x", "integer", max_length=3), "max_length/min_length apply to")
    refused(lambda: field("x", "string", max_length=2, min_length=3), "min_length is greater")
    refused(lambda: field("x", "string", max_length=0), "max_length")
    refused(lambda: field("x", "string", min_length=-1), "min_length")


def test_ranges_apply_to_numbers_only() -> None:
    probability = field("x", "integer", min=0, max=100)
    assert (probability.min, probability.max) == (0, 100)
    refused(lambda: field("x", "string", min=1), "min/max apply to integer and decimal")
    refused(lambda: field("x", "integer", min=5, max=1), "min is greater than max")


def test_integer_bounds_must_be_whole_numbers_within_graphql_int() -> None:
    assert field("x", "integer", min=-(2**31), max=2**31 - 1).max == 2**31 - 1
    refused(lambda: field("x", "integer", max=2**31), "max: 2147483648 is out of range")
    refused(lambda: field("x", "integer", min=-(2**31) - 1), "min: -2147483649 is out of range")
    refused(lambda: field("x", "integer", min="0.5"), "min: 0.5 is not a whole number")


def test_decimal_precision_and_scale() -> None:
    money = field("amount", "decimal", currency="CNY")
    assert (money.effective_precision, money.effective_scale) == (MAX_DECIMAL_PRECISION, 2)
    rate = field("rate", "decimal", precision=9, scale=6)
    assert (rate.effective_precision, rate.effective_scale) == (9, 6)
    assert field("whole", "decimal", precision=10, scale=0).effective_scale == 0
    refused(lambda: field("x", "decimal", precision=MAX_DECIMAL_PRECISION + 1), "precision")
    refused(lambda: field("x", "decimal", precision=0), "precision")
    refused(lambda: field("x", "decimal", precision=4, scale=5), "scale is greater than precision")
    refused(lambda: field("x", "decimal", precision=1), "scale is greater than precision")
    refused(lambda: field("x", "decimal", currency="rmb"), "currency")
    refused(lambda: field("x", "integer", scale=2), "precision, scale and currency apply")


def test_decimal_bounds_must_fit_the_column() -> None:
    refused(lambda: field("x", "decimal", scale=2, min="0.001"), "min: at most 2 decimal places")
    refused(
        lambda: field("x", "decimal", precision=4, scale=2, max=1000),
        "max: at most 2 digits before the decimal point",
    )
    assert field("x", "decimal", precision=4, scale=2, max="99.99").max == decimal.Decimal("99.99")


def test_defaults_must_be_valid_values_of_the_field() -> None:
    assert field("x", "string", default="件").default == "件"
    assert field("x", "boolean", default=True).default is True
    assert field("x", "decimal", default="9.90").default == "9.90"
    refused(lambda: field("x", "string", default=5), "default: expected text, got a number")
    refused(lambda: field("x", "string", max_length=2, default="abc"), "default: at most 2")
    refused(lambda: field("x", "integer", min=0, default=-1), "default: must be at least 0")
    refused(lambda: field("x", "decimal", default="1.234"), "default: at most 2 decimal places")
    refused(lambda: field("x", "boolean", default="yes"), "default: expected true or false")


def test_text_and_json_cannot_be_unique_or_indexed() -> None:
    refused(lambda: field("x", "text", unique=True), "text fields cannot be unique or indexed")
    refused(lambda: field("x", "json", indexed=True), "json fields cannot be unique or indexed")
    assert field("x", "string", unique=True, indexed=True).unique


# -- Relations ------------------------------------------------------------------------------


def test_relations_store_the_target_id_in_a_column() -> None:
    owner = field("owner", "relation", target="user", inverse="owned_things")
    assert owner.column == "owner_id"
    assert owner.on_delete is OnDelete.SET_NULL
    assert field("name").column == "name"


def test_relation_options() -> None:
    refused(lambda: field("owner", "relation"), "a relation needs a 'target' entity")
    refused(
        lambda: field("owner", "relation", target="user", unique=True),
        "a many-to-one relation cannot be unique",
    )
    refused(
        lambda: field("owner", "relation", target="user", required=True),
        "a required relation cannot use on_delete: set_null",
    )
    required = field("owner", "relation", target="user", required=True, on_delete="restrict")
    assert required.on_delete is OnDelete.RESTRICT
    refused(lambda: field("owner", "relation", target="user", on_delete="nothing"), "on_delete")
    refused(lambda: field("x", "string", target="user"), "target, inverse and inverse_label")


@pytest.mark.parametrize("inverse", ["Owned Things", "ownedThings", "version", "created_at", "id"])
def test_inverse_names_obey_field_name_rules(inverse: str) -> None:
    refused(lambda: field("owner", "relation", target="user", inverse=inverse), "inverse name")


# -- Computed and protected fields ----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"formula": "name", "required": True}, "a computed field cannot be required"),
        ({"formula": "name", "type": "enum"}, "a computed field is of type"),
        ({"rollup": {"relation": "items", "op": "sum"}}, "rollup: function: Field required"),
        ({"formula": ""}, "at least 1 character"),
    ],
)
def test_computed_fields_refuse_what_does_not_fit(options: dict[str, Any], message: str) -> None:
    refused(lambda: field("x", "string", **options), message)


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("integer", {"encrypted": True}, "encrypted applies to string, text, email, phone and url"),
        ("string", {"searchable": "exact"}, "searchable: exact applies to encrypted fields"),
        ("string", {"encrypted": True, "unique": True}, "cannot be unique or indexed"),
    ],
)
def test_encrypted_options_fit_the_type(kind: str, options: dict[str, Any], message: str) -> None:
    refused(lambda: field("x", kind, **options), message)


def test_encrypted_text_fields_are_accepted() -> None:
    phone = field("phone", "phone", encrypted=True, searchable="exact")
    assert phone.encrypted and phone.searchable == "exact"


# -- Entities -------------------------------------------------------------------------------


def test_an_entity_declares_fields_display_field_and_indexes() -> None:
    account = entity(
        "account",
        "accounts",
        plural_label={"en": "Accounts", "zh-CN": "客户"},
        display_field="name",
        indexes=[["name", "owner"]],
        fields=[
            {"name": "name", "type": "string", "label": LABEL},
            {"name": "owner", "type": "relation", "target": "user", "label": LABEL},
        ],
    )
    assert account.field("owner") is not None
    assert account.field("missing") is None
    assert account.field_at_column("owner_id") is account.field("owner")
    assert account.field_at_column("name") is account.field("name")
    assert account.field_at_column("owner") is None
    assert [f.name for f in account.relations] == ["owner"]
    assert account.source == "custom"


def test_duplicate_field_names_are_refused() -> None:
    twice = [{"name": "name", "type": "string", "label": LABEL}] * 2
    refused(lambda: entity(fields=twice), "field name 'name' is used twice")


def test_a_relation_column_may_not_clash_with_another_field() -> None:
    clash = [
        {"name": "account", "type": "relation", "target": "account", "label": LABEL},
        {"name": "account_id", "type": "string", "label": LABEL},
    ]
    refused(lambda: entity(fields=clash), "field name 'account_id' is used twice")


def test_display_field_and_indexes_must_name_fields() -> None:
    refused(lambda: entity(display_field="name"), "display_field 'name' is not a field")
    one = [{"name": "name", "type": "string", "label": LABEL}]
    refused(lambda: entity(fields=one, indexes=[["name", "nope"]]), "unknown fields ['nope']")
    refused(lambda: entity(fields=one, indexes=[[]]), "index []")


def test_with_and_without_field_revalidate_the_entity() -> None:
    base = entity(fields=[{"name": "name", "type": "string", "label": LABEL}])
    grown = base.with_field(field("code", "string", unique=True))
    assert [f.name for f in grown.fields] == ["name", "code"]
    replaced = grown.with_field(field("code", "integer"))
    code = replaced.field("code")
    assert code is not None and code.type is FieldType.INTEGER
    assert replaced.field_at_column("code") is code
    assert [f.name for f in replaced.without_field("code").fields] == ["name"]
    assert replaced.without_field("code").field_at_column("code") is None
    shown = entity(
        display_field="name", fields=[{"name": "name", "type": "string", "label": LABEL}]
    )
    with pytest.raises(ValidationError, match="display_field 'name' is not a field"):
        shown.without_field("name")


def test_declarations_round_trip_through_plain_data() -> None:
    original = entity(
        "opportunity",
        "opportunities",
        display_field="name",
        fields=[
            {"name": "name", "type": "string", "required": True, "label": LABEL},
            {
                "name": "amount",
                "type": "decimal",
                "precision": 18,
                "scale": 2,
                "currency": "CNY",
                "min": 0,
                "label": {"en": "Amount", "zh-CN": "金额"},
            },
            {
                "name": "stage",
                "type": "enum",
                "default": "OPEN",
                "values": [{"value": "OPEN", "label": {"zh-CN": "进行中"}}],
                "label": LABEL,
            },
        ],
    )
    data = original.as_data()
    assert data["fields"][1]["label"] == {"en": "Amount", "zh-CN": "金额"}
    assert data["fields"][0] == {"name": "name", "type": "string", "required": True, "label": LABEL}
    assert EntityDef.model_validate(data) == original


def test_declarations_are_immutable() -> None:
    f = field()
    with pytest.raises(ValidationError):
        f.required = True  # type: ignore[misc]


def test_picklist_values_fit_their_column() -> None:
    assert EnumValue(value="A" * 64).value == "A" * 64
    refused(lambda: EnumValue(value="A" * 65), "at most 64 characters")
