"""Teachers read the students of their classes, their guardians and enrolments, only.

Role rules compile to SQL over a record's own columns (docs/permissions.md), and
which teacher may read a student follows from the student's enrolments, not from
a column of the student. So the template keeps a read share (``record_share``)
of the student, each guardian and the enrolment with the teacher of every class the student is
enrolled in: made when an enrolment names a class (or a guardian is added to an
enrolled student), removed when the enrolment is withdrawn or moves to another
class. The shares are records, so reads stay one SQL statement with exact counts.
"""

from __future__ import annotations

from typing import Any

from qiao.api import Actor, Record, WriteContext

SYSTEM = Actor.system()


def enrolment_moved(
    context: WriteContext, operation: str, record: Record, changes: dict[str, Any]
) -> None:
    """Share the student with the new class's teacher; unshare from the old one's."""
    if not {"school_class", "status"} & changes.keys() and operation != "delete":
        return
    old_class = changes["school_class"][0] if "school_class" in changes else None
    if old_class is not None or operation == "delete" or record["status"] == "WITHDRAWN":
        gone = old_class or record["school_class_id"]
        teacher = _teacher(context, gone)
        if teacher is not None and not _still_taught(context, record, teacher):
            for entity, record_id in [
                *_subjects(context, record["student_id"]),
                ("enrollment", record["id"]),
            ]:
                _unshare(context, entity, record_id, teacher)
    if operation != "delete" and record["status"] != "WITHDRAWN":
        teacher = _teacher(context, record["school_class_id"])
        if teacher is not None:
            for entity, record_id in [
                *_subjects(context, record["student_id"]),
                ("enrollment", record["id"]),
            ]:
                _share(context, entity, record_id, teacher)


def guardian_added(context: WriteContext, operation: str, record: Record) -> None:
    """A guardian added to an enrolled student is shared with the student's teachers."""
    if operation != "create":
        return
    shares = context.records.list(
        context.connection,
        "record_share",
        filter={"entity": {"eq": "student"}, "record_id": {"eq": record["student_id"]}},
        first=100,
        actor=SYSTEM,
    ).records
    for share in shares:
        if share["user_id"] is not None:
            _share(context, "guardian", record["id"], share["user_id"])


def _subjects(context: WriteContext, student_id: str) -> list[tuple[str, str]]:
    guardians = context.records.list(
        context.connection,
        "guardian",
        filter={"student_id": {"eq": student_id}},
        first=100,
        actor=SYSTEM,
    ).records
    return [("student", student_id), *(("guardian", g["id"]) for g in guardians)]


def _teacher(context: WriteContext, class_id: str | None) -> str | None:
    if class_id is None:
        return None
    found = context.records.get(context.connection, "school_class", class_id, actor=SYSTEM)
    return found["teacher_id"] if found else None


def _still_taught(context: WriteContext, enrolment: Record, teacher: str) -> bool:
    """Whether another live enrolment of the student is in a class of ``teacher``."""
    others = context.records.list(
        context.connection,
        "enrollment",
        filter={
            "student_id": {"eq": enrolment["student_id"]},
            "id": {"neq": enrolment["id"]},
            "status": {"neq": "WITHDRAWN"},
            "school_class_id": {"is_null": False},
        },
        first=100,
        actor=SYSTEM,
    ).records
    return any(_teacher(context, o["school_class_id"]) == teacher for o in others)


def _existing(context: WriteContext, entity: str, record_id: str, user: str) -> list[Record]:
    return context.records.list(
        context.connection,
        "record_share",
        filter={
            "entity": {"eq": entity},
            "record_id": {"eq": record_id},
            "user_id": {"eq": user},
        },
        first=10,
        actor=SYSTEM,
    ).records


def _share(context: WriteContext, entity: str, record_id: str, user: str) -> None:
    if not _existing(context, entity, record_id, user):
        context.records.create(
            context.as_actor(SYSTEM),
            "record_share",
            {"entity": entity, "record_id": record_id, "user": user, "access": "READ"},
        )


def _unshare(context: WriteContext, entity: str, record_id: str, user: str) -> None:
    for share in _existing(context, entity, record_id, user):
        context.records.delete(context.as_actor(SYSTEM), "record_share", share["id"])
