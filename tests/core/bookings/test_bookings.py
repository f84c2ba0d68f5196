"""Booking overlaps: refused through GraphQL with the record they collide with, race-free."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from qiao.core.bookings import plugin
from qiao.core.errors import ConfigurationError, Conflict
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.manifest import Manifest, parse_manifest
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient

LESSON = {
    "name": "lesson",
    "plural": "lessons",
    "label": {"en": "Lesson", "zh-CN": "课节"},
    "display_field": "title",
    "indexes": [["room", "starts_at"]],
    "fields": [
        {"name": "title", "type": "string", "label": {"zh-CN": "课程"}},
        {"name": "room", "type": "string", "label": {"zh-CN": "教室"}},
        {"name": "starts_at", "type": "datetime", "label": {"zh-CN": "开始"}},
        {"name": "ends_at", "type": "datetime", "label": {"zh-CN": "结束"}},
        {
            "name": "status",
            "type": "enum",
            "default": "SCHEDULED",
            "label": {"zh-CN": "状态"},
            "values": [
                {"value": "SCHEDULED", "label": {"zh-CN": "已排课"}},
                {"value": "CANCELLED", "label": {"zh-CN": "已取消"}},
            ],
        },
    ],
}
BOOKING = {
    "entity": "lesson",
    "key": "room",
    "start": "starts_at",
    "end": "ends_at",
    "ignore_when": 'status = "CANCELLED"',
    "message": "教室已被占用",
}
CREATE = """mutation($room: String!, $from: DateTime!, $to: DateTime!, $title: String) {
  createLesson(input: {room: $room, startsAt: $from, endsAt: $to, title: $title}) { id } }"""


def at(hour: str) -> str:
    return f"2026-03-02T{hour}:00+08:00"


class Declares:
    __name__ = "bookings_fixture"

    def __init__(self, bookings: list[dict[str, Any]]) -> None:
        self.bookings = bookings

    @hookimpl
    def qiao_entity_manifests(self) -> list[Manifest]:
        data = {"entities": [LESSON], "bookings": self.bookings}
        return [parse_manifest(data, self.__name__, "school.yaml")]


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [Declares([BOOKING])]


def test_an_overlap_is_a_conflict_naming_the_booking(qiao_client: GraphQLClient) -> None:
    first = qiao_client.data(
        CREATE, {"room": "301", "from": at("09:00"), "to": at("10:00"), "title": "高一数学"}
    )["createLesson"]["id"]
    (error,) = qiao_client.errors(
        CREATE, {"room": "301", "from": at("09:30"), "to": at("10:30"), "title": "高二物理"}
    )
    assert error["extensions"] == {
        "code": "CONFLICT",
        "field": "startsAt",
        "conflictsWith": first,
    }
    assert error["message"].startswith(f"教室已被占用: it overlaps lesson 高一数学 ({first})")
    # touching is allowed, and so is another room
    qiao_client.data(CREATE, {"room": "301", "from": at("10:00"), "to": at("11:00")})
    qiao_client.data(CREATE, {"room": "302", "from": at("09:30"), "to": at("10:30")})


def test_a_booking_overlapping_two_names_the_earlier(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records

    def book(start: str, end: str) -> dict[str, Any]:
        with records.transaction(Actor.system(), Source.GRAPHQL) as ctx:
            return records.create(
                ctx, "lesson", {"room": "301", "starts_at": at(start), "ends_at": at(end)}
            )

    later = book("10:00", "11:00")
    earlier = book("09:00", "10:00")
    with pytest.raises(Conflict) as refused:
        book("09:30", "10:30")
    assert refused.value.details["conflictsWith"] == earlier["id"] != later["id"]
    book("11:00", "12:00")


def test_a_cancelled_booking_takes_no_time(qiao_client: GraphQLClient) -> None:
    first = qiao_client.data(CREATE, {"room": "301", "from": at("09:00"), "to": at("10:00")})
    lesson = first["createLesson"]["id"]
    update = (
        "mutation($id: ID!, $s: LessonStatus!) "
        "{ updateLesson(id: $id, input: {status: $s}) { id } }"
    )
    qiao_client.data(update, {"id": lesson, "s": "CANCELLED"})
    other = qiao_client.data(CREATE, {"room": "301", "from": at("09:30"), "to": at("10:30")})
    (error,) = qiao_client.errors(update, {"id": lesson, "s": "SCHEDULED"})
    assert error["extensions"]["conflictsWith"] == other["createLesson"]["id"]
    moved = (
        "mutation($id: ID!, $to: DateTime!) { updateLesson(id: $id, input: {endsAt: $to}) { id } }"
    )
    (error,) = qiao_client.errors(moved, {"id": other["createLesson"]["id"], "to": at("08:00")})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "endsAt"}


def test_a_batch_booking_one_room_twice_at_once_is_refused_whole(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records

    def lesson(room: str, start: str, end: str, status: str = "SCHEDULED") -> dict[str, Any]:
        return {"room": room, "starts_at": at(start), "ends_at": at(end), "status": status}

    overlapping = [
        lesson("301", "09:00", "10:00"),
        lesson("302", "09:00", "10:00"),
        lesson("301", "09:30", "10:30"),
    ]
    refused = pytest.raises(Conflict, match="教室已被占用: it overlaps another row of this batch")
    with refused as caught, records.transaction(Actor.system(), Source.IMPORT) as ctx:
        records.create_many(ctx, "lesson", overlapping)
    assert caught.value.field == "starts_at"
    with qiao_runtime.db.read() as conn:
        assert records.list(conn, "lesson", actor=Actor.system()).records == []
    fitting = [
        lesson("301", "09:00", "10:00"),
        lesson("301", "10:00", "11:00"),
        lesson("301", "09:30", "10:30", status="CANCELLED"),
        lesson("302", "09:30", "10:30"),
    ]
    with records.transaction(Actor.system(), Source.IMPORT) as ctx:
        assert len(records.create_many(ctx, "lesson", fitting).records) == 4


def test_a_batch_moving_lessons_meets_them_where_it_puts_them(qiao_runtime: Runtime) -> None:
    """Rows of a batch update are compared with each other where the batch puts them, and
    with the stored lessons the batch does not move."""
    records = qiao_runtime.records
    slots = [("301", "09:00", "10:00"), ("301", "10:00", "11:00"), ("301", "11:00", "12:00")]
    with records.transaction(Actor.system(), Source.IMPORT) as ctx:
        made = records.create_many(
            ctx, "lesson", [{"room": r, "starts_at": at(s), "ends_at": at(e)} for r, s, e in slots]
        ).records
    first, second, third = (r["id"] for r in made)

    def moved(record_id: str, start: str, end: str) -> tuple[str, dict[str, Any]]:
        return record_id, {"starts_at": at(start), "ends_at": at(end)}

    # The first lesson moves to the afternoon and the second into its old hour: as two
    # updates one after the other would.
    with records.transaction(Actor.system(), Source.IMPORT) as ctx:
        done = records.update_many(
            ctx, "lesson", [moved(first, "14:00", "15:00"), moved(second, "09:00", "10:00")]
        )
    assert [r["version"] for r in done.records] == [2, 2]
    with (
        pytest.raises(Conflict, match="教室已被占用: it overlaps another row of this batch"),
        records.transaction(Actor.system(), Source.IMPORT) as ctx,
    ):
        records.update_many(
            ctx, "lesson", [moved(first, "16:00", "17:00"), moved(second, "16:30", "17:30")]
        )
    with (
        pytest.raises(Conflict, match=f"教室已被占用: it overlaps lesson None \\({third}\\)"),
        records.transaction(Actor.system(), Source.IMPORT) as ctx,
    ):
        records.update_many(ctx, "lesson", [moved(first, "11:30", "12:30")])


def test_concurrent_bookings_of_one_room_let_one_win(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records
    won: list[str] = []
    lost: list[Conflict] = []
    other: list[BaseException] = []
    start = threading.Barrier(6)

    def attempt(i: int) -> None:
        start.wait()
        values = {"room": "301", "starts_at": at("09:00"), "ends_at": at("10:00"), "title": f"{i}"}
        try:
            with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
                won.append(records.create(ctx, "lesson", values)["id"])
        except Conflict as exc:
            lost.append(exc)
        except BaseException as exc:  # reported by the assertion below
            other.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not other
    assert len(won) == 1
    assert len(lost) == 5
    assert {exc.details["conflictsWith"] for exc in lost} == set(won)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": "nothing"}, "no stored field 'nothing'"),
        ({"start": "title"}, "both date or both datetime"),
        ({"ignore_when": "status"}, "ignore_when"),
    ],
)
def test_declarations_that_do_not_fit_are_refused(
    qiao_runtime: Runtime, change: dict[str, str], message: str
) -> None:
    runtime = Runtime(qiao_runtime.config, extra_plugins=[Declares([BOOKING | change])])
    try:
        with pytest.raises(ConfigurationError, match=message):
            plugin.qiao_startup(runtime)
    finally:
        runtime.close()
