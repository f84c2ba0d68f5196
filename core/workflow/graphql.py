"""GraphQL: the approver's queue and the acts of approval.

Definitions, requests, decisions and stage history are records, so they are
read and (for definitions) written through the generated API
(``createPipeline``, ``approvalRequests``...). What is added here is not a
plain read or write: ``pendingApprovals`` (what the caller may decide, whatever
their rights on requests) and ``submitForApproval``, ``approveRequest``,
``rejectRequest``, ``cancelApprovalRequest``, each in one transaction as the
caller, checked by the workflow itself (docs/workflow.md).
"""

from __future__ import annotations

import enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from qiao.core.graphql import paging
from qiao.core.graphql.context import RequestContext
from qiao.core.graphql.names import entity_named
from qiao.core.graphql.parts import OrderDirection, PageInfo
from qiao.core.graphql.scalars import DateTime
from qiao.core.metadata.registry import type_name
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.workflow import approvals

RequestId = Annotated[strawberry.ID, strawberry.argument(description="The approval request's id.")]
Comment = Annotated[
    str | None, strawberry.argument(description="Why; kept with the decision and shown to all.")
]


@strawberry.type(description="An approval request after a submission or a decision.")
class ApprovalOutcome:
    id: strawberry.ID = strawberry.field(description="The approval request's id.")
    entity: str = strawberry.field(
        description="The type name (as Quote) of the record it is about."
    )
    record_id: strawberry.ID = strawberry.field(description="The id of the record it is about.")
    status: str = strawberry.field(description="PENDING, APPROVED, REJECTED or CANCELLED.")
    step: int = strawberry.field(description="The step waiting for a decision (1-based).")

    @classmethod
    def of(cls, request: Record) -> ApprovalOutcome:
        return cls(
            id=strawberry.ID(request["id"]),
            entity=type_name(request["entity"]),
            record_id=strawberry.ID(request["record_id"]),
            status=request["status"],
            step=int(request["step"]),
        )


@strawberry.type(description="A pending approval request the caller may decide now.")
class ApprovalTask:
    id: strawberry.ID = strawberry.field(description="The approval request's id.")
    process: str = strawberry.field(description="The approval process's name.")
    entity: str = strawberry.field(
        description="The type name (as Quote) of the record it is about."
    )
    record_id: strawberry.ID = strawberry.field(description="The id of the record it is about.")
    step: int = strawberry.field(description="The step waiting for a decision (1-based).")
    step_name: str = strawberry.field(description="That step's name.")
    submitted_at: DateTime = strawberry.field(description="When the record was submitted.")
    submitted_by_id: strawberry.ID | None = strawberry.field(
        description="Who submitted it; null when a rule or an entry condition did."
    )

    @classmethod
    def of(cls, request: Record, waiting: approvals.Waiting) -> ApprovalTask:
        return cls(
            id=strawberry.ID(request["id"]),
            process=waiting.process.name,
            entity=type_name(request["entity"]),
            record_id=strawberry.ID(request["record_id"]),
            step=int(request["step"]),
            step_name=waiting.step_name,
            submitted_at=request["submitted_at"],
            submitted_by_id=strawberry.ID(request["owner_id"]) if request["owner_id"] else None,
        )


ApprovalTaskEdge, ApprovalTaskConnection = paging.connection_types(
    ApprovalTask,
    item="The request.",
    edge="One approval request in a page of the caller's queue.",
    page="A page of the approval requests the caller may decide now.",
    whole="Where the page lies in the whole queue.",
)


@strawberry.enum(description="What the approval queue can be sorted by.")
class ApprovalTaskOrderField(enum.Enum):
    SUBMITTED_AT = strawberry.enum_value(
        "submitted_at", description="When the record was submitted."
    )


@strawberry.input(description="The sort key of the approval queue.")
class ApprovalTaskOrderBy:
    field: ApprovalTaskOrderField = strawberry.field(
        default=ApprovalTaskOrderField.SUBMITTED_AT, description="The field (SUBMITTED_AT)."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.ASC, description="ASC (oldest first, the default) or DESC."
    )


@strawberry.input(description="Which requests of the approval queue to show; all given must hold.")
class ApprovalTaskFilter:
    entity: list[str] | None = strawberry.field(
        default=None, description="About a record of one of these types (as Quote)."
    )
    process: list[str] | None = strawberry.field(
        default=None, description="Of one of these approval processes, by name."
    )
    step: int | None = strawberry.field(default=None, description="Waiting at this step (1-based).")


@strawberry.type(name="Query")
class WorkflowQuery:
    @strawberry.field(
        description="Pending requests whose current step the caller may decide, oldest first "
        "unless orderBy says DESC."
    )
    def pending_approvals(
        self,
        info: Info,
        filter: Annotated[
            ApprovalTaskFilter | None,
            strawberry.argument(description="Which requests to show."),
        ] = None,
        order_by: Annotated[
            list[ApprovalTaskOrderBy] | None,
            strawberry.argument(description=paging.ORDER_BY),
        ] = None,
        first: paging.First = None,
        after: paging.After = None,
        last: paging.Last = None,
        before: paging.Before = None,
    ) -> ApprovalTaskConnection:
        ctx: RequestContext = info.context
        records = ctx.runtime.records
        where: dict[str, object] = {}
        if filter is not None:
            if filter.entity is not None:
                names = [entity_named(ctx, e, "entity") for e in filter.entity]
                where["entity"] = {"in": names}
            if filter.step is not None:
                where["step"] = {"eq": filter.step}
        direction = "DESC" if paging.descending(order_by) else "ASC"
        with ctx.runtime.db.read() as conn:
            waiting = {
                w.request["id"]: w
                for w in approvals.awaiting(conn, records, ctx.actor)
                if filter is None or filter.process is None or w.process.name in filter.process
            }
            page = records.list(
                conn,
                "approval_request",
                filter={**where, "id": {"in": sorted(waiting)}},
                order_by=[{"field": "submitted_at", "direction": direction}],
                first=first,
                after=after,
                last=last,
                before=before,
                with_total=paging.wants(info, "totalCount"),
                actor=Actor.system(),
            )
        edges = [
            ApprovalTaskEdge(cursor=cursor, node=ApprovalTask.of(request, waiting[request["id"]]))
            for cursor, request in zip(page.cursors, page.records, strict=True)
        ]
        return ApprovalTaskConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total_count or 0,
        )


@strawberry.type(name="Mutation")
class WorkflowMutation:
    @strawberry.mutation(description="Submit a record to an approval process; it is locked.")
    def submit_for_approval(
        self,
        info: Info,
        entity: Annotated[
            str, strawberry.argument(description="The record's type name, as Quote.")
        ],
        id: Annotated[strawberry.ID, strawberry.argument(description="The record's id.")],
        process: Annotated[str, strawberry.argument(description="The approval process's name.")],
    ) -> ApprovalOutcome:
        ctx: RequestContext = info.context
        records = ctx.runtime.records
        name = entity_named(ctx, entity)
        with records.transaction(ctx.actor, Source.GRAPHQL, ctx.request_id) as wctx:
            request = approvals.start_approval(wctx, process, name, str(id))
        return ApprovalOutcome.of(request)

    @strawberry.mutation(description="Approve the current step of a request, with a comment.")
    def approve_request(
        self, info: Info, id: RequestId, comment: Comment = None
    ) -> ApprovalOutcome:
        return _decide(info, str(id), "APPROVED", comment)

    @strawberry.mutation(description="Reject a request at its current step, with a comment.")
    def reject_request(self, info: Info, id: RequestId, comment: Comment = None) -> ApprovalOutcome:
        return _decide(info, str(id), "REJECTED", comment)

    @strawberry.mutation(description="Withdraw a pending request (its submitter or an admin).")
    def cancel_approval_request(self, info: Info, id: RequestId) -> ApprovalOutcome:
        ctx: RequestContext = info.context
        records = ctx.runtime.records
        with records.transaction(ctx.actor, Source.GRAPHQL, ctx.request_id) as wctx:
            request = approvals.cancel(wctx, str(id))
        return ApprovalOutcome.of(request)


def _decide(info: Info, request_id: str, decision: str, comment: str | None) -> ApprovalOutcome:
    ctx: RequestContext = info.context
    records = ctx.runtime.records
    with records.transaction(ctx.actor, Source.GRAPHQL, ctx.request_id) as wctx:
        request = approvals.decide(wctx, request_id, decision, comment)
    return ApprovalOutcome.of(request)


TYPES: list[type] = [WorkflowQuery, WorkflowMutation]
