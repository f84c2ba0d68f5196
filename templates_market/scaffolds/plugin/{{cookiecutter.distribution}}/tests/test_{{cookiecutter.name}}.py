"""The {{ cookiecutter.name }} plugin through the GraphQL API, as a client uses it."""

from __future__ import annotations

from typing import Any


def test_an_item_is_created_for_an_account(qiao_client: Any) -> None:
    account = qiao_client.data('mutation { createAccount(input: {name: "精工机械"}) { id } }')
    account_id = account["createAccount"]["id"]
    created = qiao_client.data(
        "mutation($a: ID!) { create{{ cookiecutter.entity_type }}"
        '(input: {title: "  首次巡检  ", accountId: $a}) { title status account { name } } }',
        {"a": account_id},
    )
    assert created["create{{ cookiecutter.entity_type }}"] == {
        "title": "首次巡检",
        "status": "OPEN",
        "account": {"name": "精工机械"},
    }
    listed = qiao_client.data("{ {{ cookiecutter.entity_field }}s { totalCount } }")
    assert listed["{{ cookiecutter.entity_field }}s"]["totalCount"] == 1


def test_a_blank_title_is_refused(qiao_client: Any) -> None:
    errors = qiao_client.errors(
        'mutation { create{{ cookiecutter.entity_type }}(input: {title: "   "}) { id } }'
    )
    assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "title"}
