"""Subscriptions across server processes: a write through one ``qiao serve`` reaches a
subscriber of another through PostgreSQL's LISTEN/NOTIFY, and a resume on either misses
nothing and repeats nothing."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from qiao.core import outbound
from qiao.core.config import Config
from qiao.core.events.livewake import FALLBACK_SECONDS
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.deployment import free_port
from tests.core.web.test_graphql_ws import CHANGES, FILTER, UPDATE, change, create
from tests.core.web.ws import Socket

QIAO = [sys.executable, "-c", "from qiao.cli.main import main; main()"]


@contextlib.contextmanager
def serving(config: Config) -> Iterator[str]:
    """``qiao serve`` (no event worker) on a free loopback port; yields its base URL."""
    port = free_port()
    command = [*QIAO, "--config", str(config.path), "serve", "--host", "127.0.0.1"]
    with subprocess.Popen(
        [*command, "--port", str(port), "--no-worker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as server:
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120  # a busy machine starts processes slowly
            with outbound.client(timeout=1) as http:
                while True:
                    assert server.poll() is None, server.communicate()
                    with contextlib.suppress(httpx.TransportError):
                        http.get(f"{base}/healthz")
                        break
                    assert time.monotonic() < deadline, "qiao serve did not answer in time"
                    time.sleep(0.05)
            yield base
        finally:
            server.terminate()
            server.communicate(timeout=60)


@pytest.mark.parametrize("qiao_backend", ["postgresql"], indirect=True)
def test_a_write_through_one_process_reaches_a_subscriber_of_another(
    qiao_config: Config, qiao_admin_token: str
) -> None:
    with serving(qiao_config) as first, serving(qiao_config) as second:
        writer = GraphQLClient(first, qiao_admin_token)
        try:
            with Socket(second) as ws:
                ws.init(qiao_admin_token)
                sub = ws.subscribe_live(CHANGES, {"filter": FILTER})
                began = time.monotonic()
                contact = create(writer, "订阅跨进程")
                created = change(ws.receive(), sub)
                waited = time.monotonic() - began
                assert (created["operation"], created["id"]) == ("CREATED", contact)
                # Woken by the NOTIFY, not by the subscription's own look at the feed.
                assert waited < FALLBACK_SECONDS / 2, waited

            # Disconnected from the second process: changes commit through the first.
            writer.data(UPDATE, {"id": contact, "input": {"title": "甲"}})
            writer.data(UPDATE, {"id": contact, "input": {"title": "乙"}})
            later = create(writer, "订阅之后")
            for base in (second, first):  # either process replays the same, once
                with Socket(base) as ws:
                    ws.init(qiao_admin_token)
                    sub = ws.subscribe(CHANGES, {"filter": FILTER, "after": created["cursor"]})
                    replayed = [change(ws.receive(), sub) for _ in range(3)]
                    assert [(c["operation"], c["id"]) for c in replayed] == [
                        ("UPDATED", contact),
                        ("UPDATED", contact),
                        ("CREATED", later),
                    ]
                    assert replayed[0]["record"]["title"] == "乙"  # read when delivered
                    assert ws.quiet(1.0), "a change was delivered twice"
        finally:
            writer.close()
