"""Offline sync through a live server: pulls under the caller's rules, pushes with conflicts.

A field rep reads and changes only the accounts they own, reads phone numbers
masked and never sees annual revenue (the role below).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.records.changes import changes_since
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.sync import cursor as cursors
from qiao.core.sync.push import RETENTION
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer

FIELD_REP = {
    "entities": {
        "account": {"read": "own", "create": "own", "update": "own", "delete": "own"},
        "contact": {"read": "own", "create": "own", "update": "own"},
    },
    "fields": {"account": {"phone": "masked", "annual_revenue": "none"}},
}

PULL = """
query Pull($entities: [String!]!, $cursor: String, $first: Int) {
  syncPull(entities: $entities, cursor: $cursor, first: $first) {
    upserts { entity id version fields }
    tombstones { entity id }
    cursor hasMore resetRequired
  }
}
"""

PUSH = """
mutation Push($edits: [SyncEdit!]!) {
  syncPush(edits: $edits) {
    clientMutationId status entity id version
    record { entity id version fields }
    error { code message field }
  }
}
"""


@dataclass
class Field:
    runtime: Runtime
    rep: str
    other: str
    token: str
    client: GraphQLClient

    def write(self, entity: str, values: dict[str, Any], record_id: str | None = None) -> Any:
        records = self.runtime.records
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            if record_id is None:
                return records.create(ctx, entity, values)
            return records.update(ctx, entity, record_id, values)

    def delete(self, entity: str, record_id: str) -> None:
        records = self.runtime.records
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            records.delete(ctx, entity, record_id)

    def pull(self, cursor: str | None = None, first: int | None = None) -> dict[str, Any]:
        variables = {"entities": ["Account"], "cursor": cursor, "first": first}
        page: dict[str, Any] = self.client.data(PULL, variables)["syncPull"]
        return page

    def pull_all(self, cursor: str | None = None, first: int | None = None) -> list[dict]:
        pages = [self.pull(cursor, first)]
        while pages[-1]["hasMore"]:
            pages.append(self.pull(pages[-1]["cursor"], first))
        return pages

    def push(self, edits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        outcomes: list[dict[str, Any]] = self.client.data(PUSH, {"edits": edits})["syncPush"]
        return outcomes


@pytest.fixture
def field(qiao_runtime: Runtime, qiao_server: LiveServer) -> Iterator[Field]:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        role = records.create(ctx, "role", {"name": "field_rep", "rights": FIELD_REP})
        rep = records.create(ctx, "user", {"username": "rep", "display_name": "张三"})
        other = records.create(ctx, "user", {"username": "other", "display_name": "李四"})
        for user in (rep, other):
            records.create(ctx, "role_assignment", {"user": user["id"], "role": role["id"]})
        token = create_token(ctx.connection, qiao_runtime.current(), "rep")
    client = GraphQLClient(qiao_server.url, token)
    yield Field(qiao_runtime, rep["id"], other["id"], token, client)
    client.close()


def test_an_initial_pull_pages_through_what_the_caller_reads_with_field_rules(field):
    mine = [
        field.write(
            "account",
            {
                "name": f"客户 {i}",
                "owner": field.rep,
                "phone": "+8613812345678",
                "annual_revenue": "1500000.00",
            },
        )
        for i in range(7)
    ]
    field.write("account", {"name": "别人的客户", "owner": field.other})

    pages = field.pull_all(first=3)

    assert [len(p["upserts"]) for p in pages] == [3, 3, 1]
    assert all(p["tombstones"] == [] and not p["resetRequired"] for p in pages)
    upserts = [u for p in pages for u in p["upserts"]]
    assert sorted(u["id"] for u in upserts) == sorted(a["id"] for a in mine)
    first = upserts[0]
    assert first["entity"] == "Account" and first["version"] == 1
    assert first["fields"]["phone"] == "138****5678"
    assert "annualRevenue" not in first["fields"]
    assert first["fields"]["ownerId"] == field.rep
    # Caught up: pulling on answers nothing more.
    again = field.pull(pages[-1]["cursor"])
    assert (again["upserts"], again["tombstones"], again["hasMore"]) == ([], [], False)


def test_incremental_pulls_bring_creates_updates_deletes_and_records_that_left(field):
    kept = field.write("account", {"name": "保留", "owner": field.rep})
    gone = field.write("account", {"name": "删除", "owner": field.rep})
    moved = field.write("account", {"name": "转走", "owner": field.rep})
    theirs = field.write("account", {"name": "别人的", "owner": field.other})
    their_old = field.write("account", {"name": "别人删的", "owner": field.other})
    cursor = field.pull_all()[-1]["cursor"]

    new = field.write("account", {"name": "新客户", "owner": field.rep, "phone": "13912345678"})
    field.write("account", {"city": "宁波"}, kept["id"])
    field.delete("account", gone["id"])
    field.write("account", {"owner": field.other}, moved["id"])
    # Others' records the rep never read: nothing of them reaches the rep, not even an id.
    field.write("account", {"city": "北京"}, theirs["id"])
    field.write("account", {"name": "别人新建", "owner": field.other})
    field.delete("account", their_old["id"])

    pages = field.pull_all(cursor, first=2)  # seven changes, two per page
    assert [p["hasMore"] for p in pages][:2] == [True, True]
    upserts = {u["id"]: u for p in pages for u in p["upserts"]}
    tombstones = [t for p in pages for t in p["tombstones"]]
    assert set(upserts) == {new["id"], kept["id"]}
    assert upserts[kept["id"]]["version"] == 2
    assert upserts[kept["id"]]["fields"]["city"] == "宁波"
    assert upserts[new["id"]]["fields"]["phone"] == "139****5678"
    # Deleted and moved out of reach answer the same bytes but for the id.
    assert sorted(tombstones, key=lambda t: t["id"]) == sorted(
        [{"entity": "Account", "id": gone["id"]}, {"entity": "Account", "id": moved["id"]}],
        key=lambda t: t["id"],
    )

    # A change to the caller's roles means the copy may be wrong: start over.
    records = field.runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        role = records.create(
            ctx, "role", {"name": "readers", "rights": {"entities": {"account": {"read": "all"}}}}
        )
        records.create(ctx, "role_assignment", {"user": field.rep, "role": role["id"]})
    reset = field.pull(pages[-1]["cursor"])
    assert reset == {
        "upserts": [],
        "tombstones": [],
        "cursor": None,
        "hasMore": False,
        "resetRequired": True,
    }
    fresh = field.pull_all()
    assert moved["id"] in {u["id"] for p in fresh for u in p["upserts"]}


def test_push_applies_answers_conflicts_and_refusals_and_retries_identically(field):
    mine = field.write("account", {"name": "原名", "owner": field.rep})
    stale = field.write("account", {"name": "旧版本", "owner": field.rep})
    field.write("account", {"name": "服务器改过"}, stale["id"])  # now at version 2
    doomed = field.write("account", {"name": "待删", "owner": field.rep})
    theirs = field.write("account", {"name": "别人的", "owner": field.other})
    batch = [
        {
            "clientMutationId": "c-1",
            "entity": "Account",
            "operation": "CREATE",
            "values": {"name": "离线新建", "city": "苏州"},
        },
        {
            "clientMutationId": "u-1",
            "entity": "Account",
            "operation": "UPDATE",
            "id": mine["id"],
            "expectedVersion": 1,
            "values": {"name": "离线改名"},
        },
        {
            "clientMutationId": "u-2",
            "entity": "Account",
            "operation": "UPDATE",
            "id": stale["id"],
            "expectedVersion": 1,
            "values": {"name": "离线改的"},
        },
        {
            "clientMutationId": "u-3",
            "entity": "Account",
            "operation": "UPDATE",
            "id": theirs["id"],
            "expectedVersion": 1,
            "values": {"name": "越权"},
        },
        {
            "clientMutationId": "c-2",
            "entity": "Account",
            "operation": "CREATE",
            "values": {"name": "坏数据", "employees": -5},
        },
        {
            "clientMutationId": "u-4",
            "entity": "Account",
            "operation": "UPDATE",
            "id": mine["id"],
            "expectedVersion": 2,
            "values": {"annualRevenue": "1.00"},
        },
        {
            "clientMutationId": "d-1",
            "entity": "Account",
            "operation": "DELETE",
            "id": doomed["id"],
            "expectedVersion": 1,
        },
    ]
    before = changes_since(field.runtime, 0, ["account"], limit=10_000)

    outcomes = field.push(batch)

    by_id = {o["clientMutationId"]: o for o in outcomes}
    assert [o["clientMutationId"] for o in outcomes] == [e["clientMutationId"] for e in batch]
    created = by_id["c-1"]
    assert (created["status"], created["version"]) == ("APPLIED", 1)
    assert created["record"]["fields"]["name"] == "离线新建"
    assert created["record"]["fields"]["city"] == "苏州"
    assert created["record"]["fields"]["ownerId"] == field.rep
    assert (by_id["u-1"]["status"], by_id["u-1"]["version"]) == ("APPLIED", 2)
    conflict = by_id["u-2"]
    assert (conflict["status"], conflict["version"], conflict["error"]) == ("CONFLICT", 2, None)
    assert conflict["record"]["fields"]["name"] == "服务器改过"
    assert by_id["u-3"]["status"] == "REFUSED"
    assert by_id["u-3"]["error"]["code"] == "NOT_FOUND"  # not theirs to read, so not found
    assert by_id["u-3"]["record"] is None
    assert by_id["c-2"]["status"] == "REFUSED"
    assert (by_id["c-2"]["error"]["code"], by_id["c-2"]["error"]["field"]) == (
        "BAD_USER_INPUT",
        "employees",
    )
    assert by_id["u-4"]["status"] == "REFUSED"
    assert (by_id["u-4"]["error"]["code"], by_id["u-4"]["error"]["field"]) == (
        "FORBIDDEN",
        "annual_revenue",
    )
    assert (by_id["d-1"]["status"], by_id["d-1"]["record"]) == ("APPLIED", None)
    written = changes_since(field.runtime, before[-1].sequence, ["account"])
    assert [c.operation for c in written] == ["create", "update", "delete"]

    retried = field.push(batch)

    assert retried == outcomes
    assert changes_since(field.runtime, written[-1].sequence, ["account"]) == []


def _creates(*edits: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"clientMutationId": cmid, "entity": "Account", "operation": "CREATE", "values": values}
        for cmid, values in edits
    ]


def _batches(field: Field, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every ``create_many`` batch the records service is asked for."""
    records = field.runtime.records
    sizes: list[int] = []
    create_many = records.create_many

    def counted(ctx: Any, entity: str, rows: Any, **options: Any) -> Any:
        sizes.append(len(rows))
        return create_many(ctx, entity, rows, **options)

    monkeypatch.setattr(records, "create_many", counted)
    return sizes


def test_consecutive_creates_are_written_together_and_answered_each(field, monkeypatch):
    sizes = _batches(field, monkeypatch)
    batch = _creates(
        ("n-1", {"name": "一号"}),
        ("n-2", {"name": "坏数据", "employees": -5}),
        ("n-3", {"name": "三号", "city": "苏州"}),
        ("n-1", {"name": "一号"}),  # the same edit sent twice answers the same
    )

    outcomes = field.push(batch)

    assert sizes == [3]  # both creates and the refused row went to one create_many
    first, bad, third, again = outcomes
    assert (first["status"], first["version"]) == ("APPLIED", 1)
    assert first["record"]["fields"]["ownerId"] == field.rep
    assert (bad["status"], bad["error"]["code"], bad["error"]["field"]) == (
        "REFUSED",
        "BAD_USER_INPUT",
        "employees",
    )
    assert (third["status"], third["record"]["fields"]["city"]) == ("APPLIED", "苏州")
    assert again == first
    written = changes_since(field.runtime, 0, ["account"])  # no account existed before
    assert sorted(c.record_id for c in written) == sorted([first["id"], third["id"]])

    assert field.push(batch) == outcomes  # a retry applies nothing again
    assert sizes == [3]
    assert changes_since(field.runtime, written[-1].sequence, ["account"]) == []


def test_a_batch_refused_whole_is_applied_edit_by_edit(field, monkeypatch):
    """A create outside the caller's scope refuses the whole ``create_many``; the edits
    are then applied alone, so only that one is refused."""
    sizes = _batches(field, monkeypatch)
    outcomes = field.push(
        _creates(
            ("s-1", {"name": "我的"}),
            ("s-2", {"name": "给别人", "ownerId": field.other}),
            ("s-3", {"name": "也是我的"}),
        )
    )

    assert sizes == [3]
    assert [o["status"] for o in outcomes] == ["APPLIED", "REFUSED", "APPLIED"]
    assert outcomes[1]["error"]["code"] == "FORBIDDEN"
    names = {u["fields"]["name"] for p in field.pull_all() for u in p["upserts"]}
    assert names == {"我的", "也是我的"}


def test_malformed_and_foreign_cursors_are_refused_naming_the_cursor(field):
    for bad in ("nonsense", "qs1.!!!", "qs1." + "e30"):
        errors = field.client.errors(PULL, {"entities": ["Account"], "cursor": bad})
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert errors[0]["extensions"]["field"] == "cursor"
        assert "not a sync cursor" in errors[0]["message"]
    cursor = field.pull()["cursor"]
    errors = field.client.errors(PULL, {"entities": ["Account", "Contact"], "cursor": cursor})
    assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "cursor"}
    errors = field.client.errors(PULL, {"entities": ["no_such_thing"]})
    assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "entities"}


class TestWithoutAuditKey:
    @pytest.fixture
    def qiao_audited_setup(self) -> bool:
        return False

    @pytest.fixture
    def qiao_config(self, qiao_database_url, qiao_enabled_plugins, tmp_path):
        from qiao.core.testing.pytest_plugin import _config

        folder = tmp_path / "deployment"
        return _config(
            qiao_database_url, qiao_enabled_plugins, folder, folder / "none", audited=False
        )

    def test_sync_is_refused_where_nothing_records_changes(self, qiao_client):
        errors = qiao_client.errors(PULL, {"entities": ["Account"]})
        assert errors[0]["extensions"]["code"] == "CONFIGURATION_ERROR"
        assert "no audit log" in errors[0]["message"]


def test_a_cursor_the_log_does_not_cover_asks_for_a_reset(field):
    """A cursor ahead of the log (a database restored from an older backup) cannot be
    read on from: the client must start over rather than miss what the backup lost."""
    position = cursors.decode(field.pull()["cursor"])
    ahead = replace(position, since=position.since + 1_000).encode()
    assert field.pull(ahead)["resetRequired"] is True


def test_outcomes_are_forgotten_after_their_retention(field, qiao_clock):
    edit = {
        "clientMutationId": "late",
        "entity": "Account",
        "operation": "CREATE",
        "values": {"name": "第一次"},
    }
    first = field.push([edit])[0]
    assert field.push([edit]) == [first]
    qiao_clock.advance(seconds=(RETENTION + dt.timedelta(minutes=1)).total_seconds())

    again = field.push([edit])[0]

    assert again["status"] == "APPLIED" and again["id"] != first["id"]


def test_a_batch_pushed_twice_at_once_is_applied_once(field, qiao_server):
    """A client that timed out and retried while the first push still ran: the head lock
    orders the two, and the second finds the first's outcomes."""
    batch = [
        {
            "clientMutationId": f"twin-{i}",
            "entity": "Account",
            "operation": "CREATE",
            "values": {"name": f"并发 {i}"},
        }
        for i in range(5)
    ]
    twin = GraphQLClient(qiao_server.url, field.token)
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(
                lambda c: c.data(PUSH, {"edits": batch})["syncPush"], (field.client, twin)
            )
    finally:
        twin.close()

    assert first == second
    assert all(o["status"] == "APPLIED" for o in first)
    names = {u["fields"]["name"] for p in field.pull_all() for u in p["upserts"]}
    assert names == {f"并发 {i}" for i in range(5)}
    created = [
        c for c in changes_since(field.runtime, 0, ["account"], 10_000) if c.operation == "create"
    ]
    assert len(created) == 5


def test_an_initial_pull_walks_every_entity_in_turn(field):
    account = field.write("account", {"name": "甲", "owner": field.rep})
    contacts = [
        field.write(
            "contact", {"name": f"联系人{i}", "owner": field.rep, "account_id": account["id"]}
        )
        for i in range(3)
    ]
    pages = []
    cursor = None
    while True:
        page = field.client.data(
            PULL, {"entities": ["Contact", "Account"], "cursor": cursor, "first": 2}
        )["syncPull"]
        pages.append(page)
        cursor = page["cursor"]
        if not page["hasMore"]:
            break
    got = [(u["entity"], u["id"]) for p in pages for u in p["upserts"]]
    assert sorted(got) == sorted(
        [("Account", account["id"])] + [("Contact", c["id"]) for c in contacts]
    )
    assert [len(p["upserts"]) for p in pages] == [2, 2]


def test_under_a_filter_rule_every_changed_record_out_of_reach_is_a_tombstone(
    field, qiao_runtime, qiao_server
):
    """Owners do not decide a filter rule, so the server cannot tell which records the
    client may hold: each changed record the caller cannot read gets a tombstone
    (docs/sync.md says what that tells)."""
    records = qiao_runtime.records
    rights = {"entities": {"account": {"read": {"filter": {"city": {"eq": "苏州"}}}}}}
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        role = records.create(ctx, "role", {"name": "suzhou_reader", "rights": rights})
        user = records.create(ctx, "user", {"username": "su", "display_name": "苏"})
        records.create(ctx, "role_assignment", {"user": user["id"], "role": role["id"]})
        token = create_token(ctx.connection, qiao_runtime.current(), "su")
    leaving = field.write("account", {"name": "迁走", "city": "苏州"})
    elsewhere = field.write("account", {"name": "北京的", "city": "北京"})
    reader = GraphQLClient(qiao_server.url, token)
    try:
        first = reader.data(PULL, {"entities": ["Account"]})["syncPull"]
        assert [u["id"] for u in first["upserts"]] == [leaving["id"]]
        field.write("account", {"city": "上海"}, leaving["id"])
        field.write("account", {"employees": 3}, elsewhere["id"])
        page = reader.data(PULL, {"entities": ["Account"], "cursor": first["cursor"]})
    finally:
        reader.close()
    tombstones = sorted(t["id"] for t in page["syncPull"]["tombstones"])
    assert tombstones == sorted([leaving["id"], elsewhere["id"]])


def test_a_record_shared_with_the_caller_resets_and_then_syncs(field):
    theirs = field.write("account", {"name": "共享的", "owner": field.other})
    cursor = field.pull_all()[-1]["cursor"]
    field.write(
        "record_share",
        {"entity": "account", "record_id": theirs["id"], "user": field.rep, "access": "READ"},
    )

    assert field.pull(cursor)["resetRequired"] is True
    cursor = field.pull_all()[-1]["cursor"]
    field.write("account", {"city": "温州"}, theirs["id"])
    page = field.pull(cursor)
    assert [(u["id"], u["fields"]["city"]) for u in page["upserts"]] == [(theirs["id"], "温州")]


def test_entities_are_named_by_type_and_enum_values_in_capitals(qiao_client):
    """The names a client meets elsewhere in the API: ``User``, ``ZH_CN``, both ways."""
    refused = qiao_client.errors(PULL, {"entities": ["user"]})
    assert refused[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "entities"}
    (admin,) = qiao_client.data(PULL, {"entities": ["User"]})["syncPull"]["upserts"]
    assert (admin["entity"], admin["fields"]["locale"]) == ("User", "ZH_CN")
    edit = {
        "clientMutationId": "locale-1",
        "entity": "User",
        "operation": "UPDATE",
        "id": admin["id"],
        "expectedVersion": admin["version"],
        "values": {"locale": "EN"},
    }
    (outcome,) = qiao_client.data(PUSH, {"edits": [edit]})["syncPush"]
    assert outcome["status"] == "APPLIED" and outcome["entity"] == "User"
    assert outcome["record"]["fields"]["locale"] == "EN"
