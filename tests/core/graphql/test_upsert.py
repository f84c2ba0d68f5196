"""Another system's keys: external-id fields, and upsert by them through GraphQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from qiao.core.errors import MetadataError
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.manifest import Manifest, parse_manifest
from qiao.core.testing.client import GraphQLClient

ERP_ITEM = {
    "name": "erp_item",
    "plural": "erp_items",
    "label": {"en": "ERP item", "zh-CN": "ERP 物料"},
    "fields": [
        {"name": "erp_number", "type": "string", "unique": True, "external_id": True,
         "label": {"en": "ERP number"}},
        {"name": "name", "type": "string", "required": True, "label": {"en": "Name"}},
    ],
}  # fmt: skip


class ErpItems:
    __name__ = "erp_items"

    @hookimpl
    def qiao_entity_manifests(self) -> list[Manifest]:
        return [parse_manifest({"entities": [ERP_ITEM]}, "erp_items", "erp_items.yaml")]


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [ErpItems()]


UPSERT = """mutation($input: ErpItemCreateInput!) {
  upsertErpItem(key: ERP_NUMBER, input: $input) { id erpNumber name version } }"""


def test_upsert_creates_then_updates_the_record_with_that_key(qiao_client: GraphQLClient) -> None:
    first = qiao_client.data(UPSERT, {"input": {"erpNumber": "BD-0001", "name": "主轴轴承"}})
    created = first["upsertErpItem"]
    assert (created["erpNumber"], created["name"], created["version"]) == ("BD-0001", "主轴轴承", 1)
    again = qiao_client.data(UPSERT, {"input": {"erpNumber": "BD-0001", "name": "主轴轴承 6205"}})
    assert again["upsertErpItem"] == {**created, "name": "主轴轴承 6205", "version": 2}
    count = qiao_client.data("{ erpItems { totalCount } }")["erpItems"]["totalCount"]
    assert count == 1


def test_upsert_needs_the_key_value(qiao_client: GraphQLClient) -> None:
    errors = qiao_client.errors(UPSERT, {"input": {"name": "无编号"}})
    assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "erpNumber"}


def test_an_external_id_is_a_unique_string_field() -> None:
    bad = {**ERP_ITEM, "fields": [{**ERP_ITEM["fields"][0], "unique": False}]}  # type: ignore[dict-item]
    with pytest.raises(MetadataError, match="an external-id field is a string field with unique"):
        parse_manifest({"entities": [bad]}, "erp_items", "erp_items.yaml")
