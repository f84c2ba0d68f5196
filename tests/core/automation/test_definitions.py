"""Rules are checked whole when written: each mistake is refused naming the part at fault."""

from __future__ import annotations

from typing import Any

import pytest

from qiao.core.testing.client import GraphQLClient

pytestmark = pytest.mark.storage

CREATE = """
mutation Create($input: AutomationRuleCreateInput!) {
  createAutomationRule(input: $input) { id name active }
}"""
UPDATE = """
mutation Update($id: ID!, $input: AutomationRuleUpdateInput!) {
  updateAutomationRule(id: $id, input: $input) { id condition }
}"""
GOOD: dict[str, Any] = {
    "name": "新工单告知主管",
    "entity": "ticket",
    "trigger": {"created": {}},
    "condition": 'priority = "URGENT"',
    "actions": [{"notify": {"roles": ["service_engineer"], "title": "新工单：{subject}"}}],
}


def _listing(**changes: Any) -> dict[str, Any]:
    """A notify action with one list of accounts, changed by ``changes``."""
    listed = {"heading": "同省客户 {count} 家", "entity": "account", "line": "{name}"}
    return {"notify": {"users": ["a"], "title": "x", "lists": [{**listed, **changes}]}}


def refused(client: GraphQLClient, **changes: Any) -> tuple[str, str]:
    (error,) = client.errors(CREATE, {"input": {**GOOD, **changes}})
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    return error["extensions"].get("field"), error["message"]


def test_a_good_rule_is_stored(qiao_client: GraphQLClient) -> None:
    created = qiao_client.data(CREATE, {"input": GOOD})["createAutomationRule"]
    assert created["name"] == "新工单告知主管"
    assert created["active"] is True


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"entity": "nothing"}, "entity", "no entity 'nothing'"),
        ({"entity": "automation_run"}, "entity", "no entity 'automation_run'"),
        ({"trigger": {"created": {}, "updated": {}}}, "trigger", "exactly one of"),
        ({"trigger": {"sometimes": {}}}, "trigger", "sometimes"),
        ({"trigger": {"updated": {"fields": ["colour"]}}}, "trigger", "no field 'colour'"),
        (
            {"trigger": {"state_entered": {"field": "status", "value": "LOST"}}},
            "trigger",
            "'LOST' is not a value of status",
        ),
        ({"trigger": {"after": {"field": "subject", "minutes": 5}}}, "trigger", "not a datetime"),
        ({"trigger": {"schedule": "every day"}}, "trigger", "not a cron expression"),
        (
            {"trigger": {"schedule": "0 8 * * *", "timezone": "Mars/Olympus"}},
            "trigger",
            "unknown time zone",
        ),
        ({"condition": "priority = "}, "condition", "line 1, column"),
        ({"condition": "colour = 1"}, "condition", "colour"),
        ({"condition": "subject"}, "condition", "TRUE or FALSE"),
        ({"actions": []}, "actions", "at least one action"),
        ({"actions": [{"teleport": {}}]}, "actions", "actions[0]: unknown action 'teleport'"),
        ({"actions": [{"set": {"colour": 1}}]}, "actions", "actions[0].set.colour"),
        ({"actions": [{"set": {"priority": "SOON"}}]}, "actions", "actions[0].set.priority"),
        ({"actions": [{"set": {"priority": "=1 + 1"}}]}, "actions", "gives"),
        (
            {"actions": [{"notify": {"roles": ["wizard"], "title": "x"}}]},
            "actions",
            "no role named 'wizard'",
        ),
        ({"actions": [{"notify": {"title": "x"}}]}, "actions", "name someone to notify"),
        (
            {"actions": [{"notify": {"users": ["a"], "title": "{colour}"}}]},
            "actions",
            "actions[0].notify.title",
        ),
        (
            {"actions": [{"notify": {"fields": ["account"], "title": "x"}}]},
            "actions",
            "does not lead to a user",
        ),
        ({"actions": [{"assign": {"user": "a", "role": "b"}}]}, "actions", "either user or role"),
        ({"actions": [{"assign": {"field": "subject", "user": "a"}}]}, "actions", "to user"),
        (
            {"actions": [{"create": {"entity": "activity", "link": "owner"}}]},
            "actions",
            "no relation 'owner' to ticket",
        ),
        (
            {"actions": [{"set": {"owner": "@account"}}]},
            "actions",
            "actions[0].set.owner: '@account' leads to account, not to user",
        ),
        (
            {"actions": [{"create": {"entity": "activity", "values": {"account": "@acount"}}}]},
            "actions",
            "'@acount': ticket has no relation 'acount'",
        ),
        ({"actions": [{"webhook": {"url": "ftp://x", "secret": "s"}}]}, "actions", "url"),
        (
            {"actions": [{"webhook": {"url": "https://erp.example.com", "secret": "s"}}]},
            "actions",
            "actions[0].webhook.secret: a webhook secret starts with 'whsec_'",
        ),
        ({"actions": [{"escalate": {"to": "role"}}]}, "actions", "role is given exactly"),
        (
            {"actions": [{"render_document": {"template": "Trial Report"}}]},
            "actions",
            "actions[0].render_document",
        ),
        ({"actions": [{"render_document": {}}]}, "actions", "template"),
        (
            {"actions": [_listing(entity="nothing")]},
            "actions",
            "actions[0].notify.lists[0].entity: no entity 'nothing' to list",
        ),
        (
            {"actions": [_listing(line="{colour}")]},
            "actions",
            "actions[0].notify.lists[0].line: account has no field 'colour'",
        ),
        (
            {"actions": [_listing(heading="共 {total} 家")]},
            "actions",
            "the only placeholder is {count}",
        ),
        (
            {"actions": [_listing(filter={"province": {"eq": "=colour"}})]},
            "actions",
            "actions[0].notify.lists[0].filter.province.eq",
        ),
    ],
)
def test_mistakes_are_refused_naming_the_part(
    qiao_client: GraphQLClient, changes: dict[str, Any], field: str, words: str
) -> None:
    where, message = refused(qiao_client, **changes)
    assert where == field
    assert words in message


def test_an_update_is_checked_against_the_whole_rule(qiao_client: GraphQLClient) -> None:
    created = qiao_client.data(CREATE, {"input": GOOD})["createAutomationRule"]
    (error,) = qiao_client.errors(
        UPDATE, {"id": created["id"], "input": {"condition": "priority > "}}
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "condition"}
    changed = qiao_client.data(
        UPDATE, {"id": created["id"], "input": {"condition": 'status = "OPEN"'}}
    )
    assert changed["updateAutomationRule"]["condition"] == 'status = "OPEN"'
