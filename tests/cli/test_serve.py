"""A real ``qiao serve`` process, reached over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.deployment import init as init_deployment

QIAO = [sys.executable, "-c", "from qiao.cli.main import main; main()"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_answers_health_checks(
    tmp_path: Path, qiao_database_url: str, make_config: Callable[..., Path]
) -> None:
    port = _free_port()
    config = make_config(tmp_path / "qiao.toml", qiao_database_url, host="127.0.0.1", port=port)
    with subprocess.Popen(
        [*QIAO, "--config", str(config), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, server.communicate()
                try:
                    health = httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "qiao serve did not answer in time"
                    time.sleep(0.05)
            assert health.json() == {"status": "ok"}
            assert httpx.get(f"{base}/readyz", timeout=5).json() == {"status": "ready"}
        finally:
            server.terminate()
            out, _ = server.communicate(timeout=10)
    assert f"GraphiQL at {base}/graphql" in out


TITLE = "紧急工单：主轴过热停机"


def test_serve_alone_runs_the_demo_rules_with_a_clean_log(
    qiao_empty_database_url: str, tmp_path: Path
) -> None:
    """A new user's first start: ``qiao init --demo``, then ``qiao serve`` and nothing else.

    The demo's rule notifies the service engineers of an urgent ticket; the worker inside
    ``serve`` must run it on the deployment ``init`` made (its key file and audit key).
    """
    site = init_deployment(tmp_path / "site", qiao_empty_database_url, "--demo")
    token = site.run("token", "create", "--user", "admin", "--name", "test").stdout.strip()
    with site.serve() as served:
        client = GraphQLClient(served.url, token)
        try:
            client.data(
                'mutation { createTicket(input: {subject: "主轴过热停机", priority: URGENT, '
                'serialNumber: "HT-VMC850-0042"}) { id } }'
            )
            notified = _wait_for(
                lambda: client.data(
                    '{ notifications(filter: {kind: {eq: "ticket_urgent"}}) '
                    "{ totalCount edges { node { title owner { username } } } } }"
                )["notifications"],
                lambda found: TITLE in [e["node"]["title"] for e in found["edges"]],
            )
        finally:
            client.close()
    mine = [edge["node"] for edge in notified["edges"] if edge["node"]["title"] == TITLE]
    assert [n["owner"]["username"] for n in mine] == ["chen.lei"]
    complaints = [
        line
        for line in served.log.splitlines()
        if any(word in line for word in ("Traceback", "ERROR", "WARNING", " failed"))
    ]
    assert complaints == [], served.log


def _wait_for(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = read()
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
