"""Every type, field, argument, input field and enum value of the schema is described,
and every description starts with a capital (graphql-schema-linter's
descriptions-are-capitalized).

Frontend developers read the API in GraphiQL and generated clients; an item
without a description is one they must guess at. The check walks the schema a
deployment serves, with the CRM and leads plugins enabled, so generated and
hand-written parts (and plugins') are held to it alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    build_schema,
)
from sqlalchemy import select

from qiao.core.graphql.service import GraphQLService
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "leads")


def _undescribed(sdl: str) -> list[str]:
    schema = build_schema(sdl)
    missing: list[str] = []

    def check(item: str, description: str | None) -> None:
        if not description:
            missing.append(item)
        elif description[0].islower():
            missing.append(f"{item} is described in lower case")

    for name, kind in schema.type_map.items():
        if name.startswith("__"):
            continue
        check(f"type {name}", kind.description)
        if isinstance(kind, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in kind.fields.items():
                check(f"field {name}.{field_name}", field.description)
                for arg, argument in field.args.items():
                    check(f"argument {name}.{field_name}({arg})", argument.description)
        if isinstance(kind, GraphQLInputObjectType):
            for f, field in kind.fields.items():
                check(f"input field {name}.{f}", field.description)
        if isinstance(kind, GraphQLEnumType):
            for value_name, value in kind.values.items():
                check(f"enum value {name}.{value_name}", value.description)
                if value_name != value_name.upper():
                    missing.append(f"enum value {name}.{value_name} is not in capitals")
    return missing


def test_the_served_schema_describes_everything(qiao_runtime: Runtime) -> None:
    sdl = GraphQLService(qiao_runtime).schema().schema.as_str()
    assert _undescribed(sdl) == []


def test_the_check_finds_what_is_missing() -> None:
    sdl = """
    "Reads." type Query { "A field." a(x: Int): Thing, b: Int }
    type Thing { "its id." id: ID }
    "Colours." enum Colour { "Red." RED, green, "blue" BLUE }
    """
    assert _undescribed(sdl) == [
        "argument Query.a(x)",
        "field Query.b",
        "type Thing",
        "field Thing.id is described in lower case",
        "enum value Colour.green",
        "enum value Colour.green is not in capitals",
        "enum value Colour.BLUE is described in lower case",
    ]


def test_enum_values_stored_in_lower_case_travel_in_capitals(
    qiao_client: GraphQLClient, qiao_runtime: Runtime
) -> None:
    """``zh_CN`` is stored as the manifest says and named ``ZH_CN`` on the wire, both ways."""
    (admin,) = qiao_client.data("{ users { edges { node { id locale } } } }")["users"]["edges"]
    assert admin["node"]["locale"] == "ZH_CN"
    changed = qiao_client.data(
        "mutation($id: ID!) { updateUser(id: $id, input: {locale: EN}) { locale } }",
        {"id": admin["node"]["id"]},
    )["updateUser"]
    assert changed == {"locale": "EN"}
    found = qiao_client.data("{ users(filter: {locale: {eq: EN}}) { totalCount } }")
    assert found["users"]["totalCount"] == 1
    with qiao_runtime.db.read() as conn:
        stored = conn.execute(select(qiao_runtime.current().table("user").c.locale)).scalar_one()
    assert stored == "en"
    (refused,) = qiao_client.errors(
        "mutation($id: ID!) { updateUser(id: $id, input: {locale: en}) { locale } }",
        {"id": admin["node"]["id"]},
    )
    assert refused["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
