"""Admin mutations over a real server: changes are live, here and in other processes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect

from qiao.core.app import create_app
from qiao.core.config import Config
from qiao.core.metadata import store
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer

ADD_FIELD = """
mutation Add($entity: String!, $definition: JSON!) {
  addField(entity: $entity, definition: $definition) { version entity field operation }
}"""
ALTER_FIELD = """
mutation Alter($entity: String!, $name: String!, $definition: JSON!, $force: Boolean!) {
  alterField(entity: $entity, name: $name, definition: $definition, force: $force) {
    version field
  }
}"""
VOLTAGE = {
    "name": "voltage",
    "type": "decimal",
    "scale": 1,
    "label": {"en": "Voltage", "zh-CN": "电压"},
}


def add_voltage(client: GraphQLClient) -> dict[str, Any]:
    data = client.data(ADD_FIELD, {"entity": "account", "definition": VOLTAGE})
    return data["addField"]


def test_added_field_is_live_on_the_same_server(qiao_client: GraphQLClient) -> None:
    assert add_voltage(qiao_client) == {
        "version": 1,
        "entity": "account",
        "field": "voltage",
        "operation": "add_field",
    }
    created = qiao_client.data(
        'mutation { createAccount(input: {name: "华东电力", voltage: "220.5"}) { id voltage } }'
    )["createAccount"]
    assert created["voltage"] == "220.5"
    listed = qiao_client.data(
        '{ accounts(filter: {voltage: {gt: "100"}}) { totalCount edges { node { voltage } } } }'
    )["accounts"]
    assert listed == {"totalCount": 1, "edges": [{"node": {"voltage": "220.5"}}]}
    meta = qiao_client.data(
        "{ metadata { version entities { name source fields "
        "{ name type scale custom label { en zhCN } } } } }"
    )["metadata"]
    assert meta["version"] == 1
    account = next(e for e in meta["entities"] if e["name"] == "account")
    assert account["source"] == "crm"
    voltage = next(f for f in account["fields"] if f["name"] == "voltage")
    assert voltage == {
        "name": "voltage",
        "type": "decimal",
        "scale": 1,
        "custom": True,
        "label": {"en": "Voltage", "zhCN": "电压"},
    }
    assert not next(f for f in account["fields"] if f["name"] == "name")["custom"]


def test_another_worker_sees_the_field_on_its_next_request(
    qiao_client: GraphQLClient, qiao_config: Config, qiao_admin_token: str
) -> None:
    other_runtime = Runtime(qiao_config)
    try:
        with LiveServer(create_app(other_runtime)) as server:
            other = GraphQLClient(server.url, qiao_admin_token)
            try:
                assert other.errors("{ accounts { edges { node { voltage } } } }")
                add_voltage(qiao_client)
                other.data('mutation { createAccount(input: {name: "甲", voltage: "3.5"}) { id } }')
                nodes = qiao_client.data("{ accounts { edges { node { voltage } } } }")
                assert nodes["accounts"]["edges"] == [{"node": {"voltage": "3.5"}}]
            finally:
                other.close()
    finally:
        other_runtime.close()


def test_custom_entity_with_a_relation(qiao_client: GraphQLClient) -> None:
    definition = {
        "name": "device",
        "plural": "devices",
        "label": {"en": "Device", "zh-CN": "设备"},
        "fields": [
            {"name": "serial", "type": "string", "required": True, "label": {"en": "Serial"}},
            {
                "name": "account",
                "type": "relation",
                "target": "account",
                "inverse": "devices",
                "label": {"en": "Account"},
            },
        ],
    }
    change = qiao_client.data(
        "mutation($d: JSON!) { createEntity(definition: $d) { version entity field } }",
        {"d": definition},
    )["createEntity"]
    assert change == {"version": 1, "entity": "device", "field": None}
    account = qiao_client.data('mutation { createAccount(input: {name: "甲"}) { id } }')
    account_id = account["createAccount"]["id"]
    qiao_client.data(
        'mutation($a: ID!) { createDevice(input: {serial: "SN-1", accountId: $a}) { id } }',
        {"a": account_id},
    )
    devices = qiao_client.data("{ devices { edges { node { serial account { id } } } } }")
    assert devices["devices"]["edges"] == [
        {"node": {"serial": "SN-1", "account": {"id": account_id}}}
    ]
    reverse = qiao_client.data(
        "query($a: ID!) { account(id: $a) { devices { totalCount edges { node { serial } } } } }",
        {"a": account_id},
    )
    assert reverse["account"]["devices"] == {
        "totalCount": 1,
        "edges": [{"node": {"serial": "SN-1"}}],
    }


def test_unsafe_change_refused_then_forced(qiao_client: GraphQLClient) -> None:
    add_voltage(qiao_client)
    qiao_client.data('mutation { createAccount(input: {name: "甲", voltage: "220.5"}) { id } }')
    integer = {"name": "voltage", "type": "integer", "label": {"en": "Voltage"}}
    variables = {"entity": "account", "name": "voltage", "definition": integer, "force": False}
    [error] = qiao_client.errors(ALTER_FIELD, variables)
    assert error["extensions"] == {"code": "CONFLICT", "field": "voltage", "records": 1}
    assert "pass force" in error["message"]
    assert qiao_client.data("{ accounts { edges { node { voltage } } } }")["accounts"] == {
        "edges": [{"node": {"voltage": "220.5"}}]
    }
    forced = qiao_client.data(ALTER_FIELD, {**variables, "force": True})["alterField"]
    assert forced == {"version": 2, "field": "voltage"}
    assert qiao_client.data("{ accounts { edges { node { voltage } } } }")["accounts"] == {
        "edges": [{"node": {"voltage": None}}]
    }


def test_drop_field_with_data_refused_then_forced(qiao_client: GraphQLClient) -> None:
    add_voltage(qiao_client)
    qiao_client.data('mutation { createAccount(input: {name: "甲", voltage: "1.0"}) { id } }')
    drop = 'mutation($f: Boolean!) { dropField(entity: "account", name: "voltage", force: $f) '
    drop += "{ version } }"
    [error] = qiao_client.errors(drop, {"f": False})
    assert error["extensions"]["code"] == "CONFLICT"
    assert qiao_client.data(drop, {"f": True}) == {"dropField": {"version": 2}}
    [gone] = qiao_client.errors("{ accounts { edges { node { voltage } } } }")
    assert gone["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_invalid_definition_is_reported_and_writes_nothing(
    qiao_client: GraphQLClient, qiao_runtime: Runtime
) -> None:
    bad = {"name": "site", "type": "relation", "target": "nowhere", "label": {"en": "Site"}}
    [error] = qiao_client.errors(ADD_FIELD, {"entity": "account", "definition": bad})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "site"}
    assert "nowhere" in error["message"]
    [clash] = qiao_client.errors(
        ADD_FIELD,
        {"entity": "account", "definition": {**VOLTAGE, "name": "annual_revenue"}},
    )
    assert clash["extensions"] == {"code": "BAD_USER_INPUT", "field": "annualRevenue"}
    with qiao_runtime.db.read() as conn:
        assert "site_id" not in {c["name"] for c in inspect(conn).get_columns("account")}
        assert store.read_version(conn) == 0


def test_plugin_field_cannot_be_altered(qiao_client: GraphQLClient) -> None:
    variables = {
        "entity": "account",
        "name": "name",
        "definition": {"type": "text", "label": {"en": "Name"}},
        "force": True,
    }
    [error] = qiao_client.errors(ALTER_FIELD, variables)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "name"}
    assert "declared by a plugin" in error["message"]
