"""Manifest files: the shipped ones load, and broken ones say where they are broken."""

from __future__ import annotations

import decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from qiao.core import builtin
from qiao.core.errors import MetadataError
from qiao.core.metadata.manifest import load_manifest, parse_manifest
from qiao.core.metadata.model import FieldType, OnDelete
from qiao.core.metadata.registry import Registry
from qiao.plugins import crm

LABEL = {"en": "Label", "zh-CN": "标签"}


@pytest.fixture(scope="module")
def registry() -> Registry:
    core = load_manifest(builtin.MANIFEST, "core")
    standard = load_manifest(crm.MANIFESTS[0], "crm")
    return Registry.build([*core.entities, *standard.entities])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "entities.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(data: Any, where: str = "plugin/entities.yaml") -> str:
    with pytest.raises(MetadataError) as caught:
        parse_manifest(data, "plugin", where)
    return caught.value.message


# -- The shipped manifests ------------------------------------------------------------------


def test_the_shipped_manifests_declare_the_standard_objects(registry: Registry) -> None:
    assert set(registry.entities) == {
        "user",
        "team",
        "role",
        "role_assignment",
        "record_share",
        "account",
        "contact",
        "lead",
        "opportunity",
        "activity",
        "ticket",
        "product",
        "quote",
    }
    assert registry.entity("user").source == "core"
    assert registry.entity("account").source == "crm"
    assert registry.entity("opportunity").plural == "opportunities"
    assert registry.entity("activity").plural == "activities"


def test_every_shipped_entity_and_field_is_labelled_in_both_languages(registry: Registry) -> None:
    for entity in registry.entities.values():
        assert entity.label.en and entity.label.zh_cn, entity.name
        if any(f.type.value == "string" for f in entity.fields):
            assert entity.display_field is not None, entity.name
        for f in entity.fields:
            assert f.label.en and f.label.zh_cn, f"{entity.name}.{f.name}"
            for v in f.values:
                assert v.label is not None and v.label.en and v.label.zh_cn, v.value


def test_opportunity_has_a_stage_picklist_and_an_amount_in_cny(registry: Registry) -> None:
    opportunity = registry.entity("opportunity")
    stage = opportunity.field("stage")
    assert stage is not None and stage.type is FieldType.ENUM
    assert stage.required and stage.default == "QUALIFICATION"
    assert {"QUALIFICATION", "CLOSED_WON", "CLOSED_LOST"} <= set(stage.enum_values)
    amount = opportunity.field("amount")
    assert amount is not None and amount.type is FieldType.DECIMAL
    assert (amount.currency, amount.effective_precision, amount.effective_scale) == ("CNY", 18, 2)
    assert amount.min == decimal.Decimal(0)
    account = opportunity.field("account")
    assert account is not None and account.required and account.on_delete is OnDelete.RESTRICT


def test_activity_records_a_touch_point_against_any_crm_object(registry: Registry) -> None:
    activity = registry.entity("activity")
    kinds = {f.name: f.type for f in activity.fields}
    assert kinds["kind"] is FieldType.ENUM
    assert kinds["channel"] is FieldType.ENUM
    assert kinds["occurred_at"] is FieldType.DATETIME
    assert kinds["summary"] is FieldType.TEXT
    targets = {f.name: f.target for f in activity.relations}
    assert targets["account"] == "account"
    assert targets["contact"] == "contact"
    assert targets["lead"] == "lead"
    assert targets["opportunity"] == "opportunity"
    channel = activity.field("channel")
    assert channel is not None and {"WECOM", "DINGTALK", "WECHAT"} <= set(channel.enum_values)


def test_the_shipped_reverse_relations(registry: Registry) -> None:
    expected = {
        ("account", "contacts"): ("contact", "account"),
        ("account", "opportunities"): ("opportunity", "account"),
        ("account", "activities"): ("activity", "account"),
        ("account", "tickets"): ("ticket", "account"),
        ("account", "subsidiaries"): ("account", "parent"),
        ("user", "owned_accounts"): ("account", "owner"),
        ("user", "owned_opportunities"): ("opportunity", "owner"),
        ("user", "reports"): ("user", "manager"),
        ("team", "members"): ("user", "team"),
        ("team", "subteams"): ("team", "parent"),
        ("lead", "opportunities"): ("opportunity", "lead"),
        ("product", "tickets"): ("ticket", "product"),
    }
    for (entity, name), (source, via) in expected.items():
        rev = registry.reverse(entity, name)
        assert rev is not None, f"{entity}.{name}"
        assert (rev.entity, rev.field.name) == (source, via)
    members = registry.reverse("team", "members")
    assert members is not None and members.label.text("zh-CN") == "成员"


def test_the_shipped_manifests_round_trip_through_plain_data(registry: Registry) -> None:
    data = {"entities": [e.as_data() for e in registry.entities.values()]}
    assert {e.pop("source") for e in data["entities"]} == {"core", "crm"}
    again = parse_manifest(yaml.safe_load(yaml.safe_dump(data, allow_unicode=True)), "x", "copy")
    assert [e.model_copy(update={"source": "custom"}) for e in again.entities] == [
        e.model_copy(update={"source": "custom"}) for e in registry.entities.values()
    ]


# -- Loading --------------------------------------------------------------------------------


def test_a_manifest_file_with_entities_and_extensions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
entities:
  - name: dealer_visit
    plural: dealer_visits
    label: {en: Dealer visit, zh-CN: 经销商拜访}
    fields:
      - {name: visited_on, type: date, required: true, label: {en: Date, zh-CN: 日期}}
extends:
  - entity: account
    fields:
      - {name: dealer_level, type: integer, min: 1, max: 5, label: {en: Level, zh-CN: 等级}}
""",
    )
    manifest = load_manifest(path, "manufacturing_dealers")
    (visit,) = manifest.entities
    assert visit.source == "manufacturing_dealers"
    assert visit.label.text("zh-CN") == "经销商拜访"
    (extension,) = manifest.extensions("manufacturing_dealers")
    assert extension.entity == "account"
    assert extension.source == "manufacturing_dealers"
    assert [f.name for f in extension.fields] == ["dealer_level"]


def test_an_empty_manifest_declares_nothing(tmp_path: Path) -> None:
    manifest = load_manifest(write(tmp_path, "entities: []\n"), "x")
    assert manifest.entities == () and manifest.extends == ()


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match=r"cannot read manifest .*nope\.yaml"):
        load_manifest(tmp_path / "nope.yaml", "x")


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "entities:\n  - name: [unclosed\n")
    with pytest.raises(MetadataError) as caught:
        load_manifest(path, "x")
    assert str(path) in caught.value.message
    assert "not valid YAML" in caught.value.message
    assert "line" in caught.value.message


def test_a_manifest_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="a manifest is a mapping"):
        load_manifest(write(tmp_path, "- name: account\n"), "x")


def test_errors_point_at_the_file_the_entity_and_the_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
entities:
  - name: good
    plural: goods
    label: {en: Good}
  - name: deal
    plural: deals
    label: {en: Deal, zh-CN: 交易}
    fields:
      - {name: title, type: string, label: {en: Title}}
      - {name: amount, type: decimal, precision: 4, scale: 6, label: {en: Amount}}
""",
    )
    with pytest.raises(MetadataError) as caught:
        load_manifest(path, "x")
    assert caught.value.message == (
        f"{path}: entities.1 (deal).fields.1 (amount): scale is greater than precision"
    )
    assert caught.value.code == "BAD_USER_INPUT"


def test_every_problem_is_reported_at_once() -> None:
    message = error_of(
        {
            "entities": [
                {
                    "name": "Deal",
                    "plural": "deals",
                    "label": LABEL,
                    "fields": [{"name": "x", "type": "money", "label": LABEL}],
                }
            ]
        }
    )
    assert "entities.0 (Deal).name: entity name 'Deal' must be snake_case" in message
    assert "entities.0 (Deal).fields.0 (x).type: Input should be 'string'" in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"entity": []}, "entity: Extra inputs are not permitted"),
        ({"entities": "account"}, "entities: Input should be a list"),
        (
            {"entities": [{"name": "deal", "plural": "deals", "label": LABEL, "colour": "red"}]},
            "entities.0 (deal).colour: Extra inputs are not permitted",
        ),
        (
            {"entities": [{"name": "deal", "plural": "deals"}]},
            "entities.0 (deal).label: Field required",
        ),
        (
            {"extends": [{"entity": "account", "fields": [{"name": "x", "type": "string"}]}]},
            "extends.0 (account).fields.0 (x).label: Field required",
        ),
        (
            {
                "entities": [
                    {
                        "name": "deal",
                        "plural": "deals",
                        "label": LABEL,
                        "fields": [
                            {
                                "name": "x",
                                "type": "string",
                                "formula": "1",
                                "label": LABEL,
                                "unique": True,
                            }
                        ],
                    }
                ]
            },
            "entities.0 (deal).fields.0 (x): a computed field cannot be unique",
        ),
        (
            {
                "extends": [
                    {
                        "entity": "opportunity",
                        "fields": [
                            {
                                "name": "outcome",
                                "type": "enum",
                                "label": LABEL,
                                "values": [{"value": "won"}, {"value": "WON"}],
                            }
                        ],
                    }
                ]
            },
            "extends.0 (opportunity).fields.0 (outcome): picklist values 'won' and 'WON' "
            "differ only in case",
        ),
    ],
)
def test_manifest_errors_are_located(data: dict[str, Any], expected: str) -> None:
    message = error_of(data)
    assert message.startswith("plugin/entities.yaml: ")
    assert expected in message
    assert "errors.pydantic.dev" not in message


# -- The documented example -----------------------------------------------------------------


def test_the_example_in_the_manifest_docs_builds_with_the_standard_objects(
    tmp_path: Path,
) -> None:
    docs = Path(__file__).parents[3] / "docs" / "manifest.md"
    blocks = docs.read_text(encoding="utf-8").split("```yaml\n")
    (example,) = [b.split("```")[0] for b in blocks if "service_contract" in b.split("```")[0]]
    manifest = load_manifest(write(tmp_path, example), "service_contracts")
    core = load_manifest(builtin.MANIFEST, "core")
    standard = load_manifest(crm.MANIFESTS[0], "crm")
    registry = Registry.build(
        [*core.entities, *standard.entities, *manifest.entities],
        manifest.extensions("service_contracts"),
    )
    for entity, name in [
        ("account", "service_contracts"),
        ("contact", "signed_contracts"),
        ("user", "owned_service_contracts"),
        ("service_contract", "devices"),
        ("product", "covered_devices"),
    ]:
        assert registry.reverse(entity, name) is not None, f"{entity}.{name}"
    assert registry.entity("account").field("service_level") is not None
    assert registry.entity("product").field("warranty_months") is not None
    contract = registry.entity("service_contract")
    fee = contract.field("annual_fee")
    assert fee is not None and (fee.currency, fee.effective_scale) == ("CNY", 2)
    assert {f.type for f in contract.fields} == set(FieldType)  # the example shows every type
