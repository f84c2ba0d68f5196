"""Connector settings through GraphQL: secrets are write-only, vendors' settings checked."""

from __future__ import annotations

from typing import Any

import pytest

from qiao.api import Actor, NotFound, Source
from qiao.core.auth.tokens import create_token
from qiao.core.testing.client import GraphQLClient
from qiao.plugins.connectors import settings

from .deployment import add_connector


def add_erp(qiao_client: Any, secret: str) -> str:
    """A Kingdee connector named ``erp`` whose app secret is ``secret``; its id."""
    return add_connector(
        qiao_client,
        name="erp",
        vendor="KINGDEE",
        baseUrl="https://erp.example.cn/k3cloud/",
        settings={"acct_id": "64f1", "username": "api"},
        appSecret=secret,
    )


def test_a_secret_is_set_and_never_read_back(qiao_client: Any, qiao_runtime: Any) -> None:
    connector = add_erp(qiao_client, "口令-1")
    errors = qiao_client.errors(f'{{ connector(id: "{connector}") {{ appSecret }} }}')
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    update = 'updateConnector(id: $id, input: {appSecret: "口令-2"}) { id }'
    qiao_client.data(f"mutation($id: ID!) {{ {update} }}", {"id": connector})
    assert settings.by_name(qiao_runtime, "erp").secret("app_secret") == "口令-2"
    with qiao_runtime.db.read() as conn:
        stored = conn.exec_driver_sql("SELECT app_secret FROM connector").scalar_one()
        record = qiao_runtime.records.get(conn, "connector", connector, actor=Actor.system())
    assert "口令" not in stored and record["settings"] == {"acct_id": "64f1", "username": "api"}


def test_a_connector_without_its_vendors_settings_is_refused(qiao_client: Any) -> None:
    errors = qiao_client.errors(
        'mutation { createConnector(input: {name: "wx", vendor: WECOM, settings: {corp_id: "ww1"}})'
        " { id } }"
    )
    assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "settings"}
    assert "agent_id" in errors[0]["message"]
    assert qiao_client.data("{ connectors { totalCount } }") == {"connectors": {"totalCount": 0}}


def test_only_administrators_see_and_sync_connectors(
    qiao_client: Any, qiao_runtime: Any, qiao_server: Any
) -> None:
    add_erp(qiao_client, "口令")
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.create(ctx, "user", {"username": "rep", "display_name": "销售"})
        token = create_token(ctx.connection, qiao_runtime.current(), "rep")
    rep = GraphQLClient(qiao_server.url, token)
    try:
        for query in (
            "{ connectorStatus { name } }",
            'mutation { syncConnector(name: "erp") }',
        ):
            assert rep.errors(query)[0]["extensions"]["code"] == "FORBIDDEN", query
        assert rep.data("{ connectors { totalCount } }") == {"connectors": {"totalCount": 0}}
    finally:
        rep.close()
    status = qiao_client.data("{ connectorStatus { name secretsSet } }")
    assert status == {"connectorStatus": [{"name": "erp", "secretsSet": ["app_secret"]}]}


def test_a_worker_reading_a_deleted_connector_says_it_is_gone(
    qiao_client: Any, qiao_runtime: Any
) -> None:
    connector = add_erp(qiao_client, "口令")
    assert settings.by_id(qiao_runtime, connector).name == "erp"
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.delete(ctx, "connector", connector)
    with pytest.raises(NotFound, match=f"no connector with id {connector}"):
        settings.by_id(qiao_runtime, connector)
