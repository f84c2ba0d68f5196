"""Helpers of the tests that run connectors inside a deployment (GraphQL in, worker, fakes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from click.testing import CliRunner

from qiao.cli import main as cli_main

from .fakes import dingtalk as dingtalk_fake
from .fakes import kingdee as kingdee_fake
from .fakes import sap as sap_fake
from .fakes import wecom as wecom_fake
from .fakes import yonyou as yonyou_fake
from .fakes.base import FakeVendor

CREATE = """
mutation($input: ConnectorCreateInput!) { createConnector(input: $input) { id name vendor } }
"""


def add_connector(client: Any, **values: Any) -> str:
    data = client.data(CREATE, {"input": values})
    return str(data["createConnector"]["id"])


def add_vendor(
    client: Any,
    vendor: str,
    name: str,
    url: str,
    settings: Mapping[str, Any],
    secret: str,
    more: Mapping[str, Any] | None,
) -> str:
    values = {"name": name, "vendor": vendor, "baseUrl": url, "settings": dict(settings)}
    return add_connector(client, **values, appSecret=secret, **(more or {}))


def add_wecom(
    client: Any, fake: FakeVendor, more: Mapping[str, Any] | None = None, **settings: Any
) -> str:
    """A WeCom connector ``企业微信`` on ``fake``; ``settings`` added to the required ones,
    ``more`` other connector fields (``syncMinutes``...)."""
    required = {"corp_id": wecom_fake.CORP_ID, "agent_id": wecom_fake.AGENT_ID}
    return add_vendor(
        client, "WECOM", "企业微信", fake.url, {**required, **settings}, wecom_fake.SECRET, more
    )


def add_dingtalk(
    client: Any,
    fake: FakeVendor,
    more: Mapping[str, Any] | None = None,
    secret: str = dingtalk_fake.APP_SECRET,
    **settings: Any,
) -> str:
    required = {"app_key": dingtalk_fake.APP_KEY, "agent_id": dingtalk_fake.AGENT_ID}
    return add_vendor(client, "DINGTALK", "钉钉", fake.url, {**required, **settings}, secret, more)


def add_kingdee(
    client: Any, fake: FakeVendor, more: Mapping[str, Any] | None = None, **settings: Any
) -> str:
    required = {"acct_id": kingdee_fake.ACCT, "username": kingdee_fake.USER}
    url = fake.url + kingdee_fake.PREFIX
    return add_vendor(
        client, "KINGDEE", "金蝶", url, {**required, **settings}, kingdee_fake.PASSWORD, more
    )


def add_yonyou(
    client: Any, fake: FakeVendor, more: Mapping[str, Any] | None = None, **settings: Any
) -> str:
    required = {"app_key": yonyou_fake.APP_KEY, "tenant_id": yonyou_fake.TENANT}
    return add_vendor(
        client, "YONYOU", "用友", fake.url, {**required, **settings}, yonyou_fake.APP_SECRET, more
    )


def add_sap(
    client: Any, fake: FakeVendor, more: Mapping[str, Any] | None = None, **settings: Any
) -> str:
    url = fake.url + sap_fake.V2
    return add_vendor(
        client, "SAP", "SAP", url, {"username": "QIAO_API", **settings}, "Welcome1", more
    )


def calls(client: Any) -> list[tuple[str, str, str | None]]:
    """The sync log, oldest first: (operation, status, error code)."""
    data = client.data(
        "{ connectorCalls(first: 200, orderBy: [{field: AT}]) "
        "{ edges { node { operation status errorCode } } } }"
    )
    return [
        (n["operation"], n["status"], n["errorCode"])
        for n in (e["node"] for e in data["connectorCalls"]["edges"])
    ]


def admin_id(client: Any) -> str:
    data = client.data('{ users(filter: {username: {eq: "admin"}}) { edges { node { id } } } }')
    return str(data["users"]["edges"][0]["node"]["id"])


def set_user(client: Any, user_id: str, **values: Any) -> None:
    client.data(
        "mutation($id: ID!, $input: UserUpdateInput!) "
        "{ updateUser(id: $id, input: $input) { id } }",
        {"id": user_id, "input": values},
    )


def notify(client: Any, owner: str, title: str, body: str = "") -> None:
    client.data(
        "mutation($input: NotificationCreateInput!) { createNotification(input: $input) { id } }",
        {"input": {"ownerId": owner, "title": title, "body": body}},
    )


def connector_command(config_path: Any) -> Callable[..., str]:
    """``run("add", ...)``: ``qiao connector ...`` on the deployment, asserting it succeeds."""
    config = ["--config", str(config_path)]
    cli_main._add_plugin_commands(config)
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> str:
        result = runner.invoke(cli_main.cli, [*config, "connector", *args], input=input)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def kingdee_added(name: str, url: str) -> tuple[list[str], str]:
    """The arguments of ``qiao connector add`` for the fake Kingdee at ``url`` as ``name``,
    and the input answering its secret's prompt."""
    args = [
        "add",
        "kingdee",
        name,
        "--setting",
        f"acct_id={kingdee_fake.ACCT}",
        "--setting",
        f"username={kingdee_fake.USER}",
        "--base-url",
        url + kingdee_fake.PREFIX,
        "--secret",
        "app_secret",
    ]
    return args, f"{kingdee_fake.PASSWORD}\n"


def skips(client: Any, operation: str) -> list[dict[str, str]]:
    """The sync log's calls ``operation`` (``push account``): status and detail."""
    data = client.data(
        "query($op: String!) { connectorCalls(filter: {operation: {eq: $op}}) "
        "{ edges { node { status detail } } } }",
        {"op": operation},
    )
    return [e["node"] for e in data["connectorCalls"]["edges"]]
