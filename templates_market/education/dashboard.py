"""GraphQL for the centre's dashboard: course matching, demand by hour, teacher load.

Every read goes through the records service as the caller, so a consultant's
dashboard counts what the consultant may read and no more. Demand and load are
aggregated from at most :data:`MAX_ROWS` records per query, read in pages.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import strawberry
from strawberry.types import Info

from qiao.api import Actor, BadUserInput, Record, RequestContext
from qiao.api import DateTime as DateTimeScalar
from qiao.api import Decimal as DecimalScalar

from .matching import best_courses

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGE = 500
MAX_ROWS = 20_000


@strawberry.type(description="A course proposed for an inquiry's words.")
class CourseMatch:
    course_id: strawberry.ID = strawberry.field(description="The course's id.")
    code: str = strawberry.field(description="The course's code.")
    name: str = strawberry.field(description="The course's name.")
    score: int = strawberry.field(description="3 per keyword found whole, 1 per shared word.")
    keywords: list[str] = strawberry.field(description="The course's keywords found whole.")
    teacher_free: bool | None = strawberry.field(
        description="Whether the course's teacher has no lesson in the asked time; null "
        "when no time was asked or the course has no teacher."
    )


@strawberry.type(description="Demand for a course in one hour of one weekday (Shanghai time).")
class DemandCell:
    course_id: strawberry.ID = strawberry.field(description="The course's id.")
    course_name: str = strawberry.field(description="The course's name.")
    weekday: int = strawberry.field(description="1 Monday ... 7 Sunday.")
    hour: int = strawberry.field(description="0-23, Asia/Shanghai.")
    inquiries: int = strawberry.field(description="Inquiries made in that hour.")
    trials: int = strawberry.field(description="Trial lessons booked to start in that hour.")


@strawberry.type(description="A teacher's lessons in a period (cancelled ones left out).")
class TeacherLoad:
    teacher_id: strawberry.ID = strawberry.field(description="The teacher's user id.")
    teacher_name: str = strawberry.field(description="The teacher's display name.")
    lessons: int = strawberry.field(description="Lessons in the period.")
    hours: DecimalScalar = strawberry.field(description="Their hours, summed exactly.")


# strawberry types field() and mutation() called with options as returning Any, so
# mypy finds the decorators below untyped; the resolvers themselves are checked.
@strawberry.type
class Query:
    @strawberry.field(description="The three courses that fit an inquiry's words best.")  # type: ignore[untyped-decorator]
    def match_courses(
        self,
        info: Info,
        text: Annotated[str, strawberry.argument(description="The inquiry's words.")],
        starts_at: Annotated[
            DateTimeScalar | None,
            strawberry.argument(description="Start of the time asked for, if any."),
        ] = None,
        ends_at: Annotated[
            DateTimeScalar | None,
            strawberry.argument(description="End of the time asked for, if any."),
        ] = None,
    ) -> list[CourseMatch]:
        context: RequestContext = info.context
        if len(text) > 500:
            raise BadUserInput("at most 500 characters", field="text")
        with context.runtime.db.read() as conn:
            courses = list(_rows(context, conn, "course", {}))
            matches = best_courses(text, courses)
            return [
                CourseMatch(
                    course_id=strawberry.ID(m.course["id"]),
                    code=m.course["code"],
                    name=m.course["name"],
                    score=m.score,
                    keywords=list(m.keywords),
                    teacher_free=_free(context, conn, m.course["teacher_id"], starts_at, ends_at),
                )
                for m in matches
            ]

    @strawberry.field(description="Inquiries and trial lessons per course, weekday and hour.")  # type: ignore[untyped-decorator]
    def course_demand(
        self,
        info: Info,
        since: Annotated[DateTimeScalar, strawberry.argument(description="Start (included).")],
        until: Annotated[DateTimeScalar, strawberry.argument(description="End (excluded).")],
    ) -> list[DemandCell]:
        context: RequestContext = info.context
        cells: Counter[tuple[str, int, int, str]] = Counter()
        with context.runtime.db.read() as conn:
            period = {"gte": since, "lt": until}
            for inquiry in _rows(context, conn, "inquiry", {"created_at": period}):
                if inquiry["course_id"] is not None:
                    cells[(inquiry["course_id"], *_slot(inquiry["created_at"]), "i")] += 1
            trials = {"kind": {"eq": "TRIAL"}, "starts_at": period}
            for lesson in _rows(context, conn, "lesson", trials):
                cells[(lesson["course_id"], *_slot(lesson["starts_at"]), "t")] += 1
            names = _names(context, conn, "course", {key[0] for key in cells}, "name")
        slots = sorted({key[:3] for key in cells}, key=lambda k: (names.get(k[0], ""), k[1], k[2]))
        return [
            DemandCell(
                course_id=strawberry.ID(course),
                course_name=names.get(course, ""),
                weekday=weekday,
                hour=hour,
                inquiries=cells[(course, weekday, hour, "i")],
                trials=cells[(course, weekday, hour, "t")],
            )
            for course, weekday, hour in slots
        ]

    @strawberry.field(description="Lessons and hours per teacher in a period.")  # type: ignore[untyped-decorator]
    def teacher_load(
        self,
        info: Info,
        since: Annotated[DateTimeScalar, strawberry.argument(description="Start (included).")],
        until: Annotated[DateTimeScalar, strawberry.argument(description="End (excluded).")],
    ) -> list[TeacherLoad]:
        context: RequestContext = info.context
        lessons: Counter[str] = Counter()
        hours: defaultdict[str, Decimal] = defaultdict(Decimal)
        with context.runtime.db.read() as conn:
            period = {"starts_at": {"gte": since, "lt": until}, "status": {"neq": "CANCELLED"}}
            for lesson in _rows(context, conn, "lesson", period):
                lessons[lesson["teacher_id"]] += 1
                hours[lesson["teacher_id"]] += lesson["hours"] or Decimal("0.0")
            names = _user_names(context, conn, set(lessons))
        return [
            TeacherLoad(
                teacher_id=strawberry.ID(teacher),
                teacher_name=names.get(teacher, ""),
                lessons=lessons[teacher],
                hours=DecimalScalar(hours[teacher]),
            )
            for teacher in sorted(lessons, key=lambda t: (-hours[t], names.get(t, "")))
        ]


def _rows(
    context: RequestContext, conn: Any, entity: str, filter: Mapping[str, Any]
) -> Iterator[Record]:
    """The records of ``entity`` the caller may read that match ``filter``, page by page."""
    after: str | None = None
    read = 0
    while read < MAX_ROWS:
        page = context.runtime.records.list(
            conn, entity, filter=filter, first=PAGE, after=after, actor=context.actor
        )
        yield from page.records
        read += len(page.records)
        if not page.has_next_page or not page.cursors:
            return
        after = page.cursors[-1]


def _names(
    context: RequestContext, conn: Any, entity: str, ids: set[str], field: str
) -> dict[str, str]:
    if not ids:
        return {}
    found = _rows(context, conn, entity, {"id": {"in": sorted(ids)}})
    return {r["id"]: r[field] or "" for r in found}


def _user_names(context: RequestContext, conn: Any, ids: set[str]) -> dict[str, str]:
    """Teachers' display names, which every dashboard shows whatever its reader's user rights."""
    found = context.runtime.records.list(
        conn, "user", filter={"id": {"in": sorted(ids)}}, first=len(ids) or 1, actor=Actor.system()
    ).records
    return {r["id"]: r["display_name"] for r in found}


def _slot(instant: dt.datetime) -> tuple[int, int]:
    local = instant.astimezone(SHANGHAI)
    return local.isoweekday(), local.hour


def _free(
    context: RequestContext,
    conn: Any,
    teacher: str | None,
    starts_at: dt.datetime | None,
    ends_at: dt.datetime | None,
) -> bool | None:
    """No uncancelled lesson of ``teacher`` overlaps [starts_at, ends_at); touching is free."""
    if teacher is None or starts_at is None or ends_at is None:
        return None
    busy = context.runtime.records.list(
        conn,
        "lesson",
        filter={
            "teacher_id": {"eq": teacher},
            "status": {"neq": "CANCELLED"},
            "starts_at": {"lt": ends_at},
            "ends_at": {"gt": starts_at},
        },
        first=1,
        actor=Actor.system(),
    )
    return not busy.records
