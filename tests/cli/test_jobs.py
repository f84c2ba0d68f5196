"""``qiao worker``, ``qiao jobs``, ``qiao webhook`` and the worker ``qiao serve`` runs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qiao.core.testing.deployment import free_port
from qiao.core.testing.server import LiveServer

from .conftest import Run

QIAO = [sys.executable, "-c", "from qiao.cli.main import main; main()"]


class Hook:
    """A receiver on 127.0.0.1 answering ``status`` and keeping every webhook-id."""

    def __init__(self) -> None:
        self.status = 200
        self.ids: list[str] = []
        self.url = ""


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()

    async def receive(request: Request) -> Response:
        await request.body()
        state.ids.append(request.headers["webhook-id"])
        return Response(status_code=state.status)

    with LiveServer(Starlette(routes=[Route("/hook", receive, methods=["POST"])])) as server:
        state.url = f"{server.url}/hook"
        yield state


def _id_after(output: str, word: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(word))
    return line.split()[1]


def test_webhooks_are_added_listed_delivered_and_removed(run: Run, hook: Hook) -> None:
    run("worker", "--once")  # what happened before the endpoint existed is not sent
    added = run("webhook", "add", hook.url, "--entity", "account").output
    endpoint_id = _id_after(added, "webhook")
    assert "secret (shown once" in added and "whsec_" in added
    listed = run("webhook", "list").output
    assert endpoint_id in listed and "active" in listed and "account" in listed
    run("entity", "list")  # any command: the endpoint is stored, not in memory
    run("webhook", "add", hook.url, "--entity", "nope", expect=1)
    bad = run("webhook", "add", hook.url, "--secret", "plain", expect=1)
    assert "whsec_" in bad.output
    run("user", "create", "lisi")  # a user: not an account, not sent
    assert run("worker", "--once").output.startswith("done:")
    assert hook.ids == []
    run("webhook", "remove", endpoint_id)
    assert "no webhook endpoints" in run("webhook", "list").output
    assert "no webhook endpoint with id" in run("webhook", "remove", endpoint_id, expect=1).output
    assert "not a webhook endpoint id" in run("webhook", "remove", "x", expect=1).output


def test_dead_letters_are_listed_shown_and_replayed(run: Run, hook: Hook) -> None:
    run("worker", "--once")
    run("webhook", "add", hook.url, "--secret", "whsec_" + "A" * 32)
    hook.status = 500
    run("user", "create", "wangwu")
    run("worker", "--once", "--max-attempts", "1")
    dead = run("jobs", "list", "--dead").output
    delivery_id = dead.splitlines()[1].split()[0]
    assert "dead" in dead and "user.create" in dead and "HTTP 500" in dead
    assert "1 dead" in dead
    shown = run("jobs", "show", delivery_id).output
    assert f"delivery  {delivery_id}" in shown
    assert "#1" in shown and "error" in shown and "WebhookFailed: HTTP 500" in shown
    assert '"entity": "user"' in shown
    hook.status = 200
    assert "1 deliveries will run again" in run("jobs", "retry", delivery_id).output
    run("worker", "--once", "--max-attempts", "1")
    assert hook.ids == [delivery_id, delivery_id]
    assert "1 done" in run("jobs", "list", "--all").output
    shown = run("jobs", "show", delivery_id).output
    assert "status    done after 2 attempt(s)" in shown, shown
    assert "0 deliveries will run again" in run("jobs", "retry", "--all-dead").output
    assert "unknown or delivered" in run("jobs", "retry", delivery_id, expect=1).output
    assert "give --all-dead" in run("jobs", "retry", expect=1).output
    assert "'nope' is not a delivery id" in run("jobs", "show", "nope", expect=1).output
    unknown = "01a2174f-e3d5-7662-ae2f-3715afbcc829"
    assert "no delivery with id" in run("jobs", "show", unknown, expect=1).output


def test_serve_runs_a_worker_that_delivers_webhooks(
    run: Run, hook: Hook, config_file: Path, qiao_admin_token: str, make_config: Callable[..., Path]
) -> None:
    run("worker", "--once")
    run("webhook", "add", hook.url, "--entity", "account")
    port = free_port()
    config = make_config(config_file, _url(config_file), host="127.0.0.1", port=port)
    with subprocess.Popen(
        [*QIAO, "--config", str(config), "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as server:
        try:
            created = _create_account(f"http://127.0.0.1:{port}", qiao_admin_token, server)
            deadline = time.monotonic() + 60
            while not hook.ids:
                assert time.monotonic() < deadline, "the webhook did not arrive"
                time.sleep(0.05)
        finally:
            server.terminate()
            server.communicate(timeout=15)
    assert created
    assert len(hook.ids) == 1
    listed = run("jobs", "list", "--all").output
    assert f"{hook.ids[0]}  done" in listed


def _create_account(base: str, token: str, server: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    query = 'mutation { createAccount(input: {name: "华南经销"}) { id } }'
    while True:
        assert server.poll() is None, server.communicate()
        try:
            response = httpx.post(
                f"{base}/graphql",
                json={"query": query},
                headers={"authorization": f"Bearer {token}"},
                timeout=10,
            )
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "qiao serve did not answer in time"
            time.sleep(0.05)
    body = response.json()
    assert body.get("errors") is None, body
    account_id: str = body["data"]["createAccount"]["id"]
    return account_id


def _url(config_file: Path) -> str:
    import tomllib

    url: str = tomllib.loads(config_file.read_text(encoding="utf-8"))["database"]["url"]
    return url
