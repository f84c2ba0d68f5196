"""A real ``qiao serve`` process, reached over HTTP."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from qiao.core.storage.database import Database
from qiao.core.storage.system import delivery_attempt
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.databases import terminate_sessions
from qiao.core.testing.deployment import Deployment, free_port
from qiao.core.testing.deployment import init as init_deployment
from tests.core.events.receiver import receiver

QIAO = [sys.executable, "-c", "from qiao.cli.main import main; main()"]
CREATE = "mutation($input: AccountCreateInput!) { createAccount(input: $input) { id name } }"
LIST = "{ accounts(first: 50) { edges { node { id name owner { username } } } } }"


@dataclass
class Served:
    base: str
    process: subprocess.Popen[str]
    output: list[str]


@contextlib.contextmanager
def serving(config: Path, port: int, *options: str) -> Iterator[Served]:
    """``qiao serve`` until the block ends; ``output`` holds stdout and stderr afterwards."""
    output: list[str] = []
    with subprocess.Popen(
        [*QIAO, "--config", str(config), "serve", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as server:
        served = Served(f"http://127.0.0.1:{port}", server, output)
        try:
            deadline = time.monotonic() + 120  # a busy machine starts processes slowly
            while True:
                assert server.poll() is None, server.communicate()
                try:
                    httpx.get(f"{served.base}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "qiao serve did not answer in time"
                    time.sleep(0.05)
            yield served
        finally:
            server.terminate()
            output.append(server.communicate(timeout=60)[0])


def _server_processes(pid: int) -> list[int]:
    """The processes ``pid`` spawned to serve (not multiprocessing's resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


def test_serve_answers_health_checks_without_an_access_log(
    tmp_path: Path, qiao_database_url: str, make_config: Callable[..., Path]
) -> None:
    port = free_port()
    config = make_config(tmp_path / "qiao.toml", qiao_database_url, host="127.0.0.1", port=port)
    with serving(config, port) as served:
        assert httpx.get(f"{served.base}/healthz", timeout=5).json() == {"status": "ok"}
        assert httpx.get(f"{served.base}/readyz", timeout=5).json() == {"status": "ready"}
    out = "".join(served.output)
    assert f"GraphiQL at {served.base}/graphql" in out
    assert "GET /readyz" not in out  # the access log is off unless asked for


def test_serve_on_port_0_names_the_port_the_system_gave_it(
    tmp_path: Path, qiao_database_url: str, make_config: Callable[..., Path]
) -> None:
    config = make_config(tmp_path / "qiao.toml", qiao_database_url, host="127.0.0.1", port=8000)
    with subprocess.Popen(
        [*QIAO, "--config", str(config), "serve", "--port", "0", "--no-worker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            lines: list[str] = []
            found = None
            while found is None and (line := server.stdout.readline()):  # "" once it ends
                lines.append(line)
                found = re.search(r"Qiao serves (http://127\.0\.0\.1:(\d+));", line)
            banner = "".join(lines)
            assert found is not None and int(found[2]) > 0, banner
            deadline = time.monotonic() + 120
            while True:
                try:
                    answer = httpx.get(f"{found[1]}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    assert server.poll() is None and time.monotonic() < deadline, banner
                    time.sleep(0.05)
            assert answer.json() == {"status": "ok"}
        finally:
            server.terminate()
            server.communicate(timeout=60)


def test_serve_on_a_taken_port_says_so_and_stops(
    tmp_path: Path, qiao_database_url: str, make_config: Callable[..., Path]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = make_config(tmp_path / "qiao.toml", qiao_database_url, host="127.0.0.1", port=port)
        done = subprocess.run(
            [*QIAO, "--config", str(config), "serve", "--no-worker"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 3  # uvicorn's exit code for a server that could not start
    assert "address already in use" in done.stderr.lower(), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Qiao serves" not in done.stdout


def test_serve_recovers_when_postgresql_ends_its_connections(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    qiao_backend: str,
    qiao_database_url: str,
    qiao_admin_token: str,
    make_config: Callable[..., Path],
) -> None:
    if qiao_backend != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    port = free_port()
    config = make_config(tmp_path / "qiao.toml", qiao_database_url, host="127.0.0.1", port=port)
    with serving(config, port, "--no-worker") as served:
        client = GraphQLClient(served.base, qiao_admin_token)
        request.addfinalizer(client.close)
        created = client.data(CREATE, {"input": {"name": "Before"}})["createAccount"]
        assert client.data(LIST)["accounts"]["edges"][0]["node"]["id"] == created["id"]

        assert terminate_sessions(qiao_database_url) >= 1
        # The very next read succeeds: its dead connection is replaced, or retried once.
        edges = client.data(LIST)["accounts"]["edges"]
        assert [e["node"]["name"] for e in edges] == ["Before"]

        assert terminate_sessions(qiao_database_url) >= 1
        after = client.data(CREATE, {"input": {"name": "After"}})["createAccount"]
        names = {e["node"]["name"] for e in client.data(LIST)["accounts"]["edges"]}
        assert after["name"] == "After" and names == {"Before", "After"}


def test_a_deployment_answers_repeated_reads_alike_and_after_its_connections_end(
    qiao_deployment: Deployment, qiao_backend: str, qiao_empty_database_url: str
) -> None:
    """As ``qiao init`` configures a server (the metadata checked once a second), a query
    asked again is read in the event loop on PostgreSQL (docs/graphql.md): the answers are
    the same, and a read after PostgreSQL ended every connection gets a fresh one."""
    site = qiao_deployment
    token = site.run("token", "create", "--user", "admin", "--name", "reads").stdout.strip()
    with site.serve() as served:
        client = GraphQLClient(served.url, token)
        try:
            for name in ("苏州精密机床", "宁波液压件"):
                client.data(CREATE, {"input": {"name": name}})
            first = client.data(LIST)
            assert {e["node"]["name"] for e in first["accounts"]["edges"]} == {
                "苏州精密机床",
                "宁波液压件",
            }
            assert [client.data(LIST) for _ in range(3)] == [first] * 3
            if qiao_backend == "postgresql":
                assert terminate_sessions(qiao_empty_database_url) >= 2
            assert [client.data(LIST) for _ in range(3)] == [first] * 3
        finally:
            client.close()
    assert "Traceback" not in served.log


def test_serve_with_several_workers_shares_the_port_and_runs_one_event_worker(
    tmp_path: Path,
    qiao_backend: str,
    qiao_database_url: str,
    qiao_admin_token: str,
    make_config: Callable[..., Path],
    qiao: Callable[..., object],
) -> None:
    if qiao_backend != "postgresql":
        pytest.skip("--workers needs PostgreSQL (SQLite is refused, tested below)")
    port = free_port()
    config = make_config(tmp_path / "qiao.toml", qiao_database_url, host="127.0.0.1", port=port)
    with receiver() as hook:
        qiao("--config", str(config), "webhook", "add", hook.url, "--entity", "account")
        with serving(config, port, "--workers", "2", "--access-log") as served:
            servers = _server_processes(served.process.pid)
            assert len(servers) == 2, servers
            clients = [GraphQLClient(served.base, qiao_admin_token) for _ in range(4)]
            ids = {
                c.data(CREATE, {"input": {"name": f"Account {i}"}})["createAccount"]["id"]
                for i, c in enumerate(clients * 3)
            }
            for c in clients:
                assert len(c.data(LIST)["accounts"]["edges"]) == 12
                c.close()
            deadline = time.monotonic() + 30
            while len(hook.requests) < len(ids):
                assert time.monotonic() < deadline, f"{len(hook.requests)} of {len(ids)} sent"
                time.sleep(0.05)
            time.sleep(0.5)  # a second event worker would send some events twice
            assert len(set(hook.ids())) == len(hook.requests) == len(ids)
    out = "".join(served.output)
    assert out.count("POST /graphql") == 16  # --access-log logs every request
    # The one event worker is a thread of the supervising process, not of a server.
    db = Database(qiao_database_url)
    try:
        with db.read() as conn:
            workers = set(conn.execute(select(delivery_attempt.c.worker).distinct()).scalars())
    finally:
        db.dispose()
    assert [w.split(":")[1] for w in workers] == [str(served.process.pid)]


@pytest.mark.parametrize(
    ("url", "extra", "message"),
    [
        ("sqlite:///qiao.db", "", "--workers needs PostgreSQL"),
        (
            "postgresql://qiao@127.0.0.1:1/none",
            "\n[clock]\ncontrollable = true\n",
            "--workers cannot serve a controllable clock",
        ),
    ],
    ids=["sqlite", "controllable-clock"],
)
def test_serve_refuses_several_workers_it_cannot_keep_consistent(
    tmp_path: Path,
    make_config: Callable[..., Path],
    qiao: Callable[..., Any],
    url: str,
    extra: str,
    message: str,
) -> None:
    config = make_config(tmp_path / "qiao.toml", url, host="127.0.0.1", port=free_port())
    config.write_text(config.read_text(encoding="utf-8") + extra, encoding="utf-8")
    result = qiao("--config", str(config), "serve", "--workers", "2", expect=2)
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "qiao.db").exists()  # refused before anything was opened


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
