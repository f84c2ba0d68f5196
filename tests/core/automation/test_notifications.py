"""Notifications: written with the change, delivered by channel plugins, read by their owner."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from qiao.core.auth.tokens import create_token
from qiao.core.automation import engine
from qiao.core.events import queue
from qiao.core.events.model import Delivery
from qiao.core.notifications import Notice, notify, notify_many, users_with_role
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.storage.system import delivery as delivery_table
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker

from .conftest import FakeChannel

pytestmark = pytest.mark.storage
MINE = "{ myNotifications { edges { node { id title readAt linkEntity } } } }"
UNREAD = "{ myNotifications(filter: {read: false}) { edges { node { title } } } }"
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


def test_notify_many_writes_each_notice_as_written_and_channels_deliver_each(
    qiao_runtime: Runtime, users: dict[str, Record], worker: Worker, channel: FakeChannel
) -> None:
    li, wang = users["li"]["id"], users["wang"]["id"]
    notices = [Notice(li, "线索一" * 100, "lead_assigned", "电话 1"), Notice(wang, "线索二", "x")]
    with qiao_runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        written = notify_many(ctx, notices)
    assert [(n["owner_id"], n["title"], n["body"], n["kind"]) for n in written] == [
        (li, ("线索一" * 100)[:200], "电话 1", "lead_assigned"),
        (wang, "线索二", "", "x"),
    ]
    drain(worker)
    assert sorted(n["title"] for _, n in channel.sent) == sorted(n["title"] for n in written)


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
    listed = li_client.nodes(MINE)
    assert listed == [{"id": mine["id"], "title": "给李工", "readAt": None, "linkEntity": "Ticket"}]
    read = li_client.data(MARK, {"id": mine["id"]})["markNotificationRead"]
    assert read["readAt"] is not None
    assert li_client.nodes(UNREAD) == []
    (error,) = li_client.errors(MARK, {"id": theirs["id"]})
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "id"}
    assert li_client.data("{ notifications { totalCount } }") == {
        "notifications": {"totalCount": 0}
    }


PAGE = """
query(
  $first: Int, $after: String, $last: Int, $before: String,
  $filter: InAppNotificationFilter, $orderBy: [InAppNotificationOrderBy!]
) {
  myNotifications(
    first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy
  ) {
    totalCount
    edges { cursor node { title kind readAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


def page(client: GraphQLClient, **arguments: Any) -> dict[str, Any]:
    data: dict[str, Any] = client.data(PAGE, arguments)["myNotifications"]
    return data


def titles(connection: dict[str, Any]) -> list[str]:
    return [e["node"]["title"] for e in connection["edges"]]


def test_my_notifications_page_both_ways_newest_first_and_filter(
    qiao_runtime: Runtime,
    users: dict[str, Record],
    li_client: GraphQLClient,
    clock: TestClock,
) -> None:
    for title in ("一", "二", "三"):
        tell(qiao_runtime, [users["li"]["id"]], title)
        clock.advance(minutes=1)
    tell(qiao_runtime, [users["wang"]["id"]], "给王工")
    with qiao_runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        (second,) = notify(ctx, users=[users["li"]["id"]], title="四", kind="other")
    li_client.data(MARK, {"id": second["id"]})

    top = page(li_client, first=2)
    assert titles(top) == ["四", "三"]
    assert (top["totalCount"], top["pageInfo"]["hasNextPage"]) == (4, True)
    assert top["pageInfo"]["hasPreviousPage"] is False
    rest = page(li_client, first=5, after=top["pageInfo"]["endCursor"])
    assert titles(rest) == ["二", "一"]
    assert (rest["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasPreviousPage"]) == (False, True)
    back = page(li_client, last=1, before=rest["pageInfo"]["startCursor"])
    assert titles(back) == ["三"]
    assert (back["pageInfo"]["hasNextPage"], back["pageInfo"]["hasPreviousPage"]) == (True, True)
    oldest = page(li_client, first=1, orderBy=[{"field": "CREATED_AT", "direction": "ASC"}])
    assert titles(oldest) == ["一"]

    unread = page(li_client, filter={"read": False})
    assert (titles(unread), unread["totalCount"]) == (["三", "二", "一"], 3)
    read = page(li_client, filter={"read": True})
    assert [e["node"]["kind"] for e in read["edges"]] == ["other"]
    assert read["edges"][0]["node"]["readAt"] is not None
    assert titles(page(li_client, filter={"kind": ["other"]})) == ["四"]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"first": -1}, "first"),
        ({"first": 1, "last": 1}, "last"),
        ({"after": "not a cursor"}, "after"),
        ({"last": 1, "before": "bm9wZQ"}, "before"),
        ({"orderBy": [{"direction": "ASC"}, {"direction": "DESC"}]}, "orderBy"),
    ],
)
def test_bad_arguments_of_my_notifications_name_their_field(
    li_client: GraphQLClient, arguments: dict[str, Any], field: str
) -> None:
    (error,) = li_client.errors(PAGE, arguments)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error
