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

from typing import Annotated

import strawberry
from strawberry.types import Info

from qiao.core.graphql.context import RequestContext
from qiao.core.graphql.scalars import DateTime
from qiao.core.records.context import Source
from qiao.core.records.service import Record
from qiao.core.workflow import approvals

RequestId = Annotated[strawberry.ID, strawberry.argument(description="The approval request's id.")]
Comment = Annotated[
    str | None, strawberry.argument(description="Why; kept with the decision and shown to all.")
]


@strawberry.type(description="An approval request after a submission or a decision.")
class ApprovalOutcome:
    id: strawberry.ID = strawberry.field(description="The approval request's id.")
    entity: str = strawberry.field(description="The entity of the record it is about.")
    record_id: strawberry.ID = strawberry.field(description="The id of the record it is about.")
    status: str = strawberry.field(description="PENDING, APPROVED, REJECTED or CANCELLED.")
    step: int = strawberry.field(description="The step waiting for a decision (1-based).")

    @classmethod
    def of(cls, request: Record) -> ApprovalOutcome:
        return cls(
            id=strawberry.ID(request["id"]),
            entity=request["entity"],
            record_id=strawberry.ID(request["record_id"]),
            status=request["status"],
            step=int(request["step"]),
        )


@strawberry.type(description="A pending approval request the caller may decide now.")
class ApprovalTask:
    id: strawberry.ID = strawberry.field(description="The approval request's id.")
    process: str = strawberry.field(description="The approval process's name.")
    entity: str = strawberry.field(description="The entity of the record it is about.")
    record_id: strawberry.ID = strawberry.field(description="The id of the record it is about.")
    step: int = strawberry.field(description="The step waiting for a decision (1-based).")
    step_name: str = strawberry.field(description="That step's name.")
    submitted_at: DateTime = strawberry.field(description="When the record was submitted.")
    submitted_by_id: strawberry.ID | None = strawberry.field(
        description="Who submitted it; null when a rule or an entry condition did."
    )


@strawberry.type(name="Query")
class WorkflowQuery:
    @strawberry.field(description="Pending requests whose current step the caller may decide.")
    def pending_approvals(self, info: Info) -> list[ApprovalTask]:
        ctx: RequestContext = info.context
        with ctx.runtime.db.read() as conn:
            waiting = approvals.awaiting(conn, ctx.runtime.records, ctx.actor)
        return [
            ApprovalTask(
                id=strawberry.ID(w.request["id"]),
                process=w.process.name,
                entity=w.request["entity"],
                record_id=strawberry.ID(w.request["record_id"]),
                step=int(w.request["step"]),
                step_name=w.step_name,
                submitted_at=w.request["submitted_at"],
                submitted_by_id=(
                    strawberry.ID(w.request["owner_id"]) if w.request["owner_id"] else None
                ),
            )
            for w in waiting
        ]


@strawberry.type(name="Mutation")
class WorkflowMutation:
    @strawberry.mutation(description="Submit a record to an approval process; it is locked.")
    def submit_for_approval(
        self,
        info: Info,
        entity: Annotated[str, strawberry.argument(description="The record's entity.")],
        id: Annotated[strawberry.ID, strawberry.argument(description="The record's id.")],
        process: Annotated[str, strawberry.argument(description="The approval process's name.")],
    ) -> ApprovalOutcome:
        ctx: RequestContext = info.context
        records = ctx.runtime.records
        with records.transaction(ctx.actor, Source.GRAPHQL, ctx.request_id) as wctx:
            request = approvals.start_approval(wctx, process, entity, str(id))
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
