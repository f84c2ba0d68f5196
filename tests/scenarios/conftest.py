"""What the scenario tests share: a WeCom-like channel that records its pushes,
and GraphQL clients signed in as the people of a scenario.

Each scenario module defines ``tokens`` (username -> bearer token) for
:func:`client_for`; the events worker is the pytest plugin's ``qiao_worker``,
driven with :func:`qiao.core.testing.worker.drain`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from qiao.core.events.model import Delivery
from qiao.core.hookspecs import hookimpl
from qiao.core.records.service import Record
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer


class RecordingChannel:
    """A notification channel named ``wecom``: what it would have pushed, by recipient."""

    name = "wecom"
    __name__ = "recording_wecom"

    def __init__(self) -> None:
        self.pushed: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def send(self, delivery: Delivery, notification: Record) -> None:
        with self.lock:
            self.pushed.append((notification["owner_id"], notification["title"]))

    @hookimpl
    def qiao_notification_channels(self) -> list[RecordingChannel]:
        return [self]


@pytest.fixture(scope="module")
def wecom_plugin() -> RecordingChannel:
    return RecordingChannel()


@pytest.fixture
def wecom(wecom_plugin: RecordingChannel) -> RecordingChannel:
    wecom_plugin.pushed.clear()
    return wecom_plugin


@pytest.fixture
def qiao_extra_plugins(wecom_plugin: RecordingChannel) -> Sequence[Any]:
    return (wecom_plugin,)


@pytest.fixture
def client_for(
    qiao_server: LiveServer, tokens: dict[str, str]
) -> Iterator[Callable[[str], GraphQLClient]]:
    """``client_for("zhou")``: a client with that person's token, closed after the test."""
    clients: list[GraphQLClient] = []

    def make(username: str) -> GraphQLClient:
        client = GraphQLClient(qiao_server.url, tokens[username])
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
