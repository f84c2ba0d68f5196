"""What the scenario tests share: a WeCom-like channel that records its pushes,
GraphQL clients signed in as the people of a scenario, and the replay clock.

Each scenario module defines ``tokens`` (username -> bearer token) for
:func:`client_for`; the events worker is the pytest plugin's ``qiao_worker``,
driven with :func:`qiao.core.testing.worker.drain`.

Every scenario also checks that nothing it wrote to an encrypted field is left in clear:
after the story, each table (the outbox, the audit log and notifications among them), the
SQLite files and the captured logs are searched for every value that was sealed.

A scenario that replays dates as an integrator would (docs/clock.md) turns its
deployment's clock controllable with :func:`qiao.core.testing.clock.controllable` and moves it with
:class:`Replay`, through GraphQL only. The deployment's own time stands still
under it (:func:`standstill`), so each instant the story sets is exact.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.encryption.fields import encrypted_fields
from qiao.core.events.model import Delivery
from qiao.core.hookmarkers import hookimpl
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.plaintext import found_in, plaintext_hits
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker

#: Where the deployment's own time stands under a replayed story.
STANDSTILL = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


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


#: Sealed values shorter than this are not searched for: a short name or a test's
#: "token-1" also occurs inside unrelated text (a key named "connector_token-1"), while
#: phones, e-mail addresses, ID numbers and addresses are longer and do not.
SEARCHED_LENGTH = 8


@pytest.fixture(autouse=True)
def no_plaintext_left(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """After a scenario with a runtime, no value sealed in an encrypted field is in clear."""
    if "qiao_runtime" not in request.fixturenames:
        yield
        return
    runtime: Runtime = request.getfixturevalue("qiao_runtime")
    encryption = runtime.records.encryption
    sealed: set[str] = set()
    seal = encryption.seal

    def recording(conn: Any, entity: Any, record_id: str, columns: Any) -> dict[str, Any]:
        out = seal(conn, entity, record_id, columns)
        sealed.update(
            str(columns[f.column])
            for f in encrypted_fields(entity)
            if f.column in columns and len(str(columns[f.column] or "")) >= SEARCHED_LENGTH
        )
        return out

    encryption.seal = recording  # type: ignore[method-assign]
    yield
    encryption.seal = seal  # type: ignore[method-assign]
    hits = plaintext_hits(runtime, sealed)
    logged = found_in(caplog.text, sealed)
    if logged:
        hits["captured logs"] = logged
    assert hits == {}, f"encrypted values found in clear: {hits}"


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


def standstill() -> TestClock:
    """The deployment's own time, stopped, for the replay clock to count its offset from."""
    clock = TestClock()
    clock.set(STANDSTILL)
    return clock


class Replay:
    """The deployment's clock as an administrator drives it: GraphQL, then the due jobs.

    ``set`` and ``advance`` are the ``setClock`` and ``advanceClock`` mutations; ``run_due``
    runs worker passes until nothing is due, as ``qiao jobs run-due`` does.
    """

    def __init__(self, admin: GraphQLClient, worker: Worker) -> None:
        self.admin = admin
        self.worker = worker

    def set(self, instant: dt.datetime) -> dt.datetime:
        state = self.admin.data(
            "mutation($to: DateTime!) { setClock(to: $to) { now controllable } }",
            {"to": instant.isoformat()},
        )["setClock"]
        assert state["controllable"] is True
        return self._checked(state["now"], instant)

    def advance(self, by: str, expected: dt.datetime | None = None) -> dt.datetime:
        """Move the clock forward ``by`` ("5s", "1d", "2h30m"); with ``expected``, it must
        then read that."""
        now = self.admin.data(
            "mutation($by: String!) { advanceClock(by: $by) { now } }", {"by": by}
        )["advanceClock"]["now"]
        if expected is None:
            return dt.datetime.fromisoformat(now)
        return self._checked(now, expected)

    def run_due(self) -> None:
        drain(self.worker)

    def now(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.admin.data("{ clock { now } }")["clock"]["now"])

    @staticmethod
    def _checked(shown: str, expected: dt.datetime) -> dt.datetime:
        now = dt.datetime.fromisoformat(shown)
        assert now == expected, f"the clock reads {now}, not {expected}"
        return now


@pytest.fixture
def replay(qiao_client: GraphQLClient, qiao_worker: Worker) -> Replay:
    return Replay(qiao_client, qiao_worker)


def staff(
    admin: GraphQLClient, runtime: Runtime, people: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    """Users made by the administrator through GraphQL, each with a role (username ->
    (display name, role name)), and their bearer tokens issued as ``qiao user token`` does."""
    roles = admin.data("{ roles(first: 100) { edges { node { id name } } } }")["roles"]["edges"]
    role_ids = {edge["node"]["name"]: edge["node"]["id"] for edge in roles}
    made: dict[str, Any] = {"id": {}, "token": {}}
    for username, (name, role) in people.items():
        user = admin.data(
            "mutation($i: UserCreateInput!) { createUser(input: $i) { id } }",
            {"i": {"username": username, "displayName": name}},
        )["createUser"]
        admin.data(
            "mutation($i: RoleAssignmentCreateInput!) { createRoleAssignment(input: $i) { id } }",
            {"i": {"userId": user["id"], "roleId": role_ids[role]}},
        )
        made["id"][username] = user["id"]
    with runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        for username in people:
            made["token"][username] = create_token(ctx.connection, runtime.current(), username)
    return made
