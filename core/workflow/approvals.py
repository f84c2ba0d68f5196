"""Approvals at work: submitting a record, deciding each step, locking while pending.

A request moves through its process's steps: an approval by one of the current
step's approvers moves it to the next step (or approves it after the last), a
rejection ends it. Every decision is an ``approval_decision`` record, so it is
audited and raises events like any write.

While a request is pending, its record is locked: any update or delete, by
anyone, is refused with CONFLICT naming the request (the record's state clashes
with the write; nothing about the caller's rights would change the answer).
The process's own actions (on submission and on the outcome) may write it:
they run inside :func:`_acting_on`, which both lifts the lock for that record
and keeps the write from submitting it again through the entry condition.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from qiao.core.automation.actions import run_actions
from qiao.core.errors import BadUserInput, Conflict, Forbidden, NotFound
from qiao.core.formula import Clock
from qiao.core.metadata.model import EntityDef
from qiao.core.notifications import notify
from qiao.core.records.context import Actor, WriteContext
from qiao.core.records.service import Record, RecordsService
from qiao.core.workflow import store
from qiao.core.workflow.approvers import approvers, describe
from qiao.core.workflow.authority import on_behalf
from qiao.core.workflow.definitions import WORKFLOW_ENTITIES, ApprovalSpec, holds

_acting: contextvars.ContextVar[frozenset[tuple[str, str]]] = contextvars.ContextVar(
    "qiao_workflow_acting", default=frozenset()
)


@contextlib.contextmanager
def _acting_on(entity: str, record_id: str) -> Iterator[None]:
    token = _acting.set(_acting.get() | {(entity, record_id)})
    try:
        yield
    finally:
        _acting.reset(token)


def _is_acting(entity: str, record_id: str) -> bool:
    return (entity, record_id) in _acting.get()


# -- Submitting ---------------------------------------------------------------------------


def start_approval(ctx: WriteContext, process: str, entity: str, record_id: str) -> Record:
    """Submit a record to the approval process named ``process``; returns the request.

    The submitter is the caller, or (for the system, such as a rule's action)
    the record's owner. Refused with BAD_USER_INPUT for an unknown or inactive
    process or one of another entity, NOT_FOUND for a record the caller cannot
    see, CONFLICT when the record already waits for an approval.
    """
    records = ctx.records
    catalog = records.catalog
    if entity not in catalog.registry.entities:
        raise BadUserInput(f"there is no entity {entity!r}", field="entity")
    spec = next(
        (p for p in store.processes(ctx.connection, catalog, entity) if p.name == process), None
    )
    if spec is None:
        raise BadUserInput(
            f"there is no active approval process {process!r} for {entity}", field="process"
        )
    # Held, so that two submissions at once make one request.
    record = records.get(ctx.connection, entity, record_id, actor=ctx.actor, lock=True)
    if record is None:
        raise NotFound(f"no {entity} with id {record_id}", field="id")
    _require_changeable(ctx, records, entity, record_id)
    pending = store.pending_request(ctx.connection, entity, record_id)
    if pending is not None:
        raise Conflict(
            f"{entity} {record_id} already waits for approval (request {pending['id']})",
            field="id",
        )
    return _submit(ctx, records, spec, record)


def _require_changeable(
    ctx: WriteContext, records: RecordsService, entity: str, record_id: str
) -> None:
    """Submitting locks the record, so only someone who may change it may submit it."""
    access = records.permissions.access_for(ctx.actor)
    if access.can(entity, "update"):
        table = records.catalog.table(entity)
        condition = access.row_filter(entity, table, "update")
        if condition is None:
            return
        inside = select(table.c.id).where(table.c.id == record_id, condition)
        if ctx.connection.execute(inside).first() is not None:
            return
    raise Forbidden(
        f"submitting a {entity} for approval locks it: only someone who may change it may submit it"
    )


def _submit(
    ctx: WriteContext, records: RecordsService, spec: ApprovalSpec, record: Record
) -> Record:
    submitter = ctx.actor.user_id or record.get("owner_id")
    first = approvers(ctx.connection, records.catalog, spec.steps[0], record, submitter)
    if not first:
        raise BadUserInput(
            f"the approval process {spec.name} cannot start: {spec.steps[0].describe(1)} has no "
            f"approver ({describe(spec.steps[0])})",
            field="process",
        )
    request = records.create(
        on_behalf(ctx),
        "approval_request",
        {
            "process": spec.id,
            "entity": spec.entity,
            "record_id": record["id"],
            "status": "PENDING",
            "step": 1,
            "owner": submitter,
            "submitted_at": records.clock(),
        },
    )
    with _acting_on(spec.entity, record["id"]):
        run_actions(
            on_behalf(ctx),
            spec.entity,
            record,
            spec.on_submitted,
            reason=f"approval {spec.name}: submitted",
        )
    _notify_approvers(ctx, records, spec, request, first)
    return request


def auto_submit(
    ctx: WriteContext,
    entity: EntityDef,
    operation: str,
    record: Record,
    changes: Mapping[str, tuple[Any, Any]],
) -> None:
    """Submit a record whose write made a process's entry condition true.

    Only a write that changed a field the condition reads submits (on creation,
    every field counts; a computed field counts as changed by any write), so an
    unrelated edit after a rejection does not submit the record again; the
    process's own actions never do.
    """
    if operation == "delete" or _is_acting(entity.name, record["id"]):
        return
    if not store.has_processes(ctx.connection, entity.name):
        return
    runtime = ctx.runtime
    records = runtime.records
    for spec in store.processes(ctx.connection, records.catalog, entity.name):
        condition = spec.entry_condition
        if condition is None:
            continue
        if operation == "update" and not _reads_changed(entity, condition.fields, changes):
            continue
        if store.pending_request(ctx.connection, entity.name, record["id"]) is not None:
            return
        clock = Clock(now=records.clock)
        catalog = records.catalog
        if holds(ctx.connection, catalog, entity.name, record, condition, clock, None):
            _submit(ctx, records, spec, record)
            return


def _reads_changed(
    entity: EntityDef, paths: tuple[str, ...], changes: Mapping[str, tuple[Any, Any]]
) -> bool:
    """Whether a write changed what a condition reads (a computed field: any change may)."""
    read = {path.split(".")[0] for path in paths}
    computed = any((f := entity.field(name)) is not None and f.computed for name in read)
    return computed or bool(read & set(changes))


# -- The lock -----------------------------------------------------------------------------


def check_unlocked(
    ctx: WriteContext, entity: EntityDef, operation: str, existing: Mapping[str, Any] | None
) -> None:
    """Refuse changing a record that waits for approval (CONFLICT naming the request)."""
    if operation == "create" or existing is None or entity.name in WORKFLOW_ENTITIES:
        return
    if _is_acting(entity.name, existing["id"]):
        return
    pending = store.pending_request(ctx.connection, entity.name, existing["id"])
    if pending is None:
        return
    verb = "deleted" if operation == "delete" else "changed"
    raise Conflict(
        f"{entity.name} {existing['id']} waits for approval (request {pending['id']}) and "
        f"cannot be {verb} until the request is approved, rejected or cancelled",
        field="id",
        approvalRequest=pending["id"],
    )


# -- Deciding -----------------------------------------------------------------------------


def decide(ctx: WriteContext, request_id: str, decision: str, comment: str | None) -> Record:
    """Approve or reject the current step of a request as the caller; returns the request.

    FORBIDDEN unless the caller is one of the step's approvers; CONFLICT when the
    request no longer waits. Approving the last step approves the request and
    runs the process's ``on_approved`` actions; a rejection at any step rejects
    it and runs ``on_rejected``.
    """
    assert decision in {"APPROVED", "REJECTED"}
    records = ctx.records
    request, spec, record = _load(ctx, records, request_id)
    step_no = int(request["step"])
    step = spec.steps[step_no - 1]
    allowed = approvers(ctx.connection, records.catalog, step, record, request["owner_id"])
    if ctx.actor.user_id is None or ctx.actor.user_id not in allowed:
        raise Forbidden(
            f"only {describe(step)} may decide {step.describe(step_no)} of this approval "
            f"({spec.name})"
        )
    now = records.clock()
    bookkeeping = on_behalf(ctx)
    records.create(
        bookkeeping,
        "approval_decision",
        {
            "request": request_id,
            "step": step_no,
            "approver": ctx.actor.user_id,
            "decision": decision,
            "comment": comment,
            "decided_at": now,
        },
    )
    version = request["version"]
    if decision == "APPROVED" and step_no < len(spec.steps):
        nxt = spec.steps[step_no]
        request = records.update(
            bookkeeping, "approval_request", request_id, {"step": step_no + 1}, version
        )
        who = approvers(ctx.connection, records.catalog, nxt, record, request["owner_id"])
        if not who:
            raise BadUserInput(
                f"{nxt.describe(step_no + 1)} of {spec.name} has no approver ({describe(nxt)})",
                field="id",
            )
        _notify_approvers(ctx, records, spec, request, who)
        return request
    request = records.update(
        bookkeeping,
        "approval_request",
        request_id,
        {"status": decision, "decided_at": now},
        version,
    )
    actions = spec.on_approved if decision == "APPROVED" else spec.on_rejected
    with _acting_on(spec.entity, record["id"]):
        reason = f"approval {spec.name}: {decision.lower()}"
        run_actions(bookkeeping, spec.entity, record, actions, reason=reason)
    _notify_submitter(ctx, spec, request, decision, comment)
    return request


def cancel(ctx: WriteContext, request_id: str) -> Record:
    """Withdraw a pending request: its submitter or an administrator; unlocks the record."""
    records = ctx.records
    request, _, _ = _load(ctx, records, request_id)
    if not ctx.actor.is_admin and ctx.actor.user_id != request["owner_id"]:
        raise Forbidden("only the submitter or an administrator may cancel an approval request")
    return records.update(
        on_behalf(ctx),
        "approval_request",
        request_id,
        {"status": "CANCELLED", "decided_at": records.clock()},
        request["version"],
    )


def _load(
    ctx: WriteContext, records: RecordsService, request_id: str
) -> tuple[Record, ApprovalSpec, Record]:
    """The pending request, its process and its record, the request locked first.

    Two approvers deciding at once would each write a decision (which holds a
    key-share lock on the request through its foreign key) and then wait for
    the other to update the request: a deadlock on PostgreSQL. Locking the
    request before anything else makes the second wait, then see the step
    already decided.
    """
    request = records.get(
        ctx.connection, "approval_request", request_id, lock=True, actor=Actor.system()
    )
    if request is None:
        raise NotFound(f"no approval request with id {request_id}", field="id")
    if request["status"] != "PENDING":
        raise Conflict(
            f"the approval request {request_id} is {request['status']}, no longer pending",
            field="id",
        )
    spec = store.process_by_id(ctx.connection, records.catalog, request["process_id"])
    record = records.get(
        ctx.connection, request["entity"], request["record_id"], actor=Actor.system()
    )
    if record is None:
        raise NotFound(f"the record of approval request {request_id} no longer exists", field="id")
    return request, spec, record


# -- The approver's queue ----------------------------------------------------------------

#: Pending requests examined for one caller's queue, oldest first.
QUEUE_SCAN = 500


def awaiting(conn: Connection, records: RecordsService, actor: Actor) -> list[Waiting]:
    """The pending requests whose current step ``actor`` may decide, oldest first.

    Approvers need not hold any right on ``approval_request``: being named by
    the step is what lets them see it here. The oldest :data:`QUEUE_SCAN`
    pending requests are examined.
    """
    if actor.user_id is None:
        return []
    table = records.catalog.table("approval_request")
    rows = conn.execute(
        select(table)
        .where(table.c.status == "PENDING")
        .order_by(table.c.submitted_at, table.c.id)
        .limit(QUEUE_SCAN)
    )
    waiting = []
    for row in rows:
        request = dict(row._mapping)
        spec = store.process_by_id(conn, records.catalog, request["process_id"])
        record = records.get(conn, request["entity"], request["record_id"], actor=Actor.system())
        if record is None:
            continue
        step = spec.steps[int(request["step"]) - 1]
        if actor.user_id in approvers(conn, records.catalog, step, record, request["owner_id"]):
            waiting.append(Waiting(request, spec, step.describe(int(request["step"]))))
    return waiting


@dataclass(frozen=True)
class Waiting:
    """A request waiting for the caller, with its process and the step's name."""

    request: Record
    process: ApprovalSpec
    step_name: str


# -- Notifications ------------------------------------------------------------------------


def _notify_approvers(
    ctx: WriteContext,
    records: RecordsService,
    spec: ApprovalSpec,
    request: Record,
    users: list[str],
) -> None:
    entity = records.catalog.entity(spec.entity)
    step_no = int(request["step"])
    notify(
        ctx,
        users=users,
        title=f"待审批：{entity.label.text('zh-CN')}（{spec.name}）",
        body=f"{spec.steps[step_no - 1].describe(step_no)}，请审批。",
        kind="approval",
        link_entity="approval_request",
        link_id=request["id"],
    )


def _notify_submitter(
    ctx: WriteContext, spec: ApprovalSpec, request: Record, decision: str, comment: str | None
) -> None:
    submitter = request["owner_id"]
    if submitter is None:
        return
    outcome = "已通过" if decision == "APPROVED" else "已驳回"
    notify(
        ctx,
        users=[submitter],
        title=f"审批{outcome}：{spec.name}",
        body=comment or "",
        kind="approval",
        link_entity="approval_request",
        link_id=request["id"],
    )
