"""Helpers of the tests that run connectors inside a deployment (GraphQL in, worker, fakes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from click.testing import CliRunner

from qiao.cli import main as cli_main

CREATE = """
mutation($input: ConnectorCreateInput!) { createConnector(input: $input) { id name vendor } }
"""


def add_connector(client: Any, **values: Any) -> str:
    data = client.data(CREATE, {"input": values})
    return str(data["createConnector"]["id"])


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
