"""Notifications: written with the change, delivered by channel plugins, read by their owner."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from qiao.core.auth.tokens import create_token
from qiao.core.automation import engine
from qiao.core.automation.notifications import notify, users_with_role
from qiao.core.events import queue
from qiao.core.events.model import Delivery
from qiao.core.events.worker import Worker
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.storage.system import delivery as delivery_table
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import drain

from .conftest import FakeChannel

pytestmark = pytest.mark.storage
MINE = "{ myNotifications { id title readAt linkEntity } }"
UNREAD = "{ myNotifications(unreadOnly: true) { title } }"
MARK = "mutation M($id: ID!) { markNotificationRead(id: $id) { id readAt } }"


def deliveries(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(delivery_table))]


@pytest.fixture
def users(create: Callable[..., Record], grant: Callable[[Record, str], None]) -> dict[str, Record]:
    li = create("user", username="li", display_name="李工")
    wang = create("user", username="wang", display_name="王工")
    grant(li, "service_engineer")
    return {"li": li, "wang": wang}


def tell(runtime: Runtime, users: list[str], title: str) -> list[Record]:
    with runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        return notify(ctx, users=users, title=title, kind="test", link_entity="ticket")


def test_notify_writes_one_per_user_and_channels_deliver_each(
    qiao_runtime: Runtime, users: dict[str, Record], worker: Worker, channel: FakeChannel
) -> None:
    li, wang = users["li"]["id"], users["wang"]["id"]
    written = tell(qiao_runtime, [li, wang, li], "设备报警")
    assert [n["owner_id"] for n in written] == [li, wang]
    with qiao_runtime.db.read() as conn:
        assert users_with_role(conn, qiao_runtime.current(), "service_engineer") == [li]
    drain(worker)
    assert sorted(n["owner_id"] for _, n in channel.sent) == sorted([li, wang])
    handlers = {d["handler"] for d in deliveries(qiao_runtime)}
    assert "notify.fake_im" in handlers


def test_a_failed_send_is_retried_under_the_same_delivery_id(
    qiao_runtime: Runtime,
    users: dict[str, Record],
    worker: Worker,
    channel: FakeChannel,
    clock: TestClock,
) -> None:
    channel.fail.append(RuntimeError("gateway down"))
    tell(qiao_runtime, [users["li"]["id"]], "重试")
    drain(worker)
    assert channel.sent == []
    (row,) = [d for d in deliveries(qiao_runtime) if d["handler"] == "notify.fake_im"]
    assert row["status"] == queue.PENDING
    clock.advance(seconds=60)
    drain(worker)
    ((delivery_id, _),) = channel.sent
    assert delivery_id == row["id"]


def test_a_worker_killed_after_running_a_rule_does_nothing_twice(
    qiao_runtime: Runtime,
    rule: Callable[..., Record],
    create: Callable[..., Record],
    rows: Callable[..., list[Record]],
    users: dict[str, Record],
    worker: Worker,
    channel: FakeChannel,
    clock: TestClock,
) -> None:
    """The rule's transaction committed, the worker died before recording it: it runs again."""
    rule(
        "告知李工", "ticket", {"created": {}}, [{"notify": {"users": ["li"], "title": "{subject}"}}]
    )
    create("ticket", subject="停机")
    lease = dt.timedelta(seconds=30)
    with qiao_runtime.db.write() as conn:
        queue.dispatch(conn, list(worker.handlers.values()), clock(), 50)
    with qiao_runtime.db.write() as conn:
        claimed = queue.claim(conn, "killed", clock(), lease, 50)
    (item,) = [c for c in claimed if c.handler == engine.HANDLER]
    engine.handle(Delivery(item.id, item.handler, item.attempt, item.event, qiao_runtime))
    clock.advance(seconds=31)
    drain(worker)
    assert len(rows("notification", owner_id=users["li"]["id"])) == 1
    assert len(channel.sent) == 1
    (row,) = [d for d in deliveries(qiao_runtime) if d["handler"] == engine.HANDLER]
    assert (row["status"], row["attempts"]) == (queue.DONE, 2)


@pytest.fixture
def li_client(
    qiao_runtime: Runtime, qiao_server: LiveServer, users: dict[str, Record]
) -> Iterator[GraphQLClient]:
    with qiao_runtime.db.write() as conn:
        token = create_token(conn, qiao_runtime.current(), "li", name="tests")
    client = GraphQLClient(qiao_server.url, token)
    yield client
    client.close()


def test_users_read_and_mark_their_own_notifications_only(
    qiao_runtime: Runtime, users: dict[str, Record], li_client: GraphQLClient
) -> None:
    (mine,) = tell(qiao_runtime, [users["li"]["id"]], "给李工")
    (theirs,) = tell(qiao_runtime, [users["wang"]["id"]], "给王工")
    listed = li_client.data(MINE)["myNotifications"]
    assert listed == [{"id": mine["id"], "title": "给李工", "readAt": None, "linkEntity": "ticket"}]
    read = li_client.data(MARK, {"id": mine["id"]})["markNotificationRead"]
    assert read["readAt"] is not None
    assert li_client.data(UNREAD) == {"myNotifications": []}
    (error,) = li_client.errors(MARK, {"id": theirs["id"]})
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "id"}
    assert li_client.data("{ notifications { totalCount } }") == {
        "notifications": {"totalCount": 0}
    }
