"""Names a client sees are the API's: camelCase fields in messages and metadata, type names.

Through the live server on both databases: what ``metadata`` calls a field is what the
schema serves, and an error names the field as the request did.
"""

from __future__ import annotations

from typing import Any

import pytest

from qiao.core.testing.client import GraphQLClient

META = """
{ metadata { entities {
    name typeName apiName plural apiPlural
    fields { name apiName idApiName target targetType }
    validationRules { field apiField }
} } }
"""


def test_metadata_gives_the_names_the_schema_serves(qiao_client: GraphQLClient) -> None:
    schema = qiao_client.data(
        "{ __schema { queryType { fields { name } } types { name fields { name } "
        "inputFields { name } } } }"
    )["__schema"]
    roots = {f["name"] for f in schema["queryType"]["fields"]}
    types = {t["name"]: t for t in schema["types"]}
    entities = {e["name"]: e for e in qiao_client.data(META)["metadata"]["entities"]}
    for entity in entities.values():
        assert entity["apiName"] in roots and entity["apiPlural"] in roots, entity
        served = {f["name"] for f in types[entity["typeName"]]["fields"]}
        inputs = {f["name"] for f in types[f"{entity['typeName']}UpdateInput"]["inputFields"]}
        for field in entity["fields"]:
            assert field["apiName"] in served | inputs, (entity["name"], field)
            if field["idApiName"] is not None:
                assert field["idApiName"] in inputs, (entity["name"], field)
                assert entities[field["target"]]["typeName"] == field["targetType"]
    account = entities["account"]
    assert (account["typeName"], account["apiName"], account["apiPlural"]) == (
        "Account",
        "account",
        "accounts",
    )
    fields = {f["name"]: f for f in account["fields"]}
    assert fields["annual_revenue"]["apiName"] == "annualRevenue"
    assert fields["annual_revenue"]["idApiName"] is None
    assert fields["owner"] == {
        "name": "owner",
        "apiName": "owner",
        "idApiName": "ownerId",
        "target": "user",
        "targetType": "User",
    }
    request = entities["approval_request"]
    assert (request["typeName"], request["apiPlural"]) == ("ApprovalRequest", "approvalRequests")


CREATE = "mutation($i: AccountCreateInput!) { createAccount(input: $i) { id } }"
LIST = (
    "query($f: AccountFilter, $o: [AccountOrderBy!], $first: Int, $last: Int, $after: String, "
    "$before: String) { accounts(filter: $f, orderBy: $o, first: $first, last: $last, "
    "after: $after, before: $before) { totalCount } }"
)


def test_input_errors_name_fields_as_the_api_does(qiao_client: GraphQLClient) -> None:
    (error,) = qiao_client.errors(CREATE, {"i": {"name": "宁波", "annualRevenue": "1.005"}})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "annualRevenue"}
    assert error["message"] == "annualRevenue: at most 2 decimal places are allowed"
    (error,) = qiao_client.errors(CREATE, {"i": {"name": "宁波", "annualRevenue": "-1"}})
    assert error["extensions"]["field"] == "annualRevenue"
    assert error["message"].startswith("annualRevenue: ") and "annual_revenue" not in str(error)
    (error,) = qiao_client.errors(LIST, {"f": {"annualRevenue": {"gt": "1.234"}}})
    assert error["extensions"]["field"] == "annualRevenue"
    assert "annual_revenue" not in error["message"]


def too_deep(levels: int) -> dict[str, Any]:
    """A filter nested deeper than filters may nest."""
    spec: dict[str, Any] = {"name": {"eq": "x"}}
    for _ in range(levels):
        spec = {"not": spec}
    return spec


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"first": -1}, "first"),
        ({"last": -1}, "last"),
        ({"first": 1, "last": 1}, "last"),
        ({"first": 501}, "first"),
        ({"after": "bm9wZQ"}, "after"),
        ({"last": 1, "before": "x!"}, "before"),
        ({"first": 1, "before": "WyJ4Il0"}, "before"),
        ({"last": 1, "after": "WyJ4Il0"}, "after"),
        ({"f": too_deep(12)}, "filter"),
    ],
)
def test_every_bad_paging_argument_names_its_field(
    qiao_client: GraphQLClient, variables: dict[str, Any], field: str
) -> None:
    (error,) = qiao_client.errors(LIST, variables)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error


def test_a_cursor_of_another_order_names_the_argument(qiao_client: GraphQLClient) -> None:
    for name in ("一", "二"):
        qiao_client.data(CREATE, {"i": {"name": name}})
    page = qiao_client.data(
        "{ accounts(first: 1, orderBy: [{field: NAME}]) { pageInfo { endCursor } } }"
    )["accounts"]
    (error,) = qiao_client.errors(LIST, {"after": page["pageInfo"]["endCursor"]})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
