"""GraphQL: importLeads, mergeLeads, convertLead and leadStats.

Files travel base64-encoded in the JSON request, which keeps uploads to one
ordinary GraphQL call; the API's 1 MB request limit therefore caps a file at
about 700 KB (roughly 5,000-10,000 rows). Larger files go through
``qiao import``. Writes go through the records service as the caller.
"""

from __future__ import annotations

import base64
import binascii
import enum

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from qiao.api import BadUserInput, DateTime, RequestContext, Source
from qiao.plugins.leads import stats
from qiao.plugins.leads.conversion import convert_lead
from qiao.plugins.leads.importing.runner import Importer
from qiao.plugins.leads.merge import merge_leads

#: Problems listed in one response; the counts always cover every row.
MAX_PROBLEMS = 1000


@strawberry.type(description="A refused or duplicate row of an import.")
class ImportProblem:
    row: int = strawberry.field(description="The row number as the spreadsheet shows it.")
    column: str | None
    kind: str = strawberry.field(description="error or duplicate")
    reason: str


@strawberry.type(description="What an import did, or (dry run) would do.")
class ImportResult:
    run_id: strawberry.ID | None
    dry_run: bool
    rows: int
    created: int
    duplicates: int
    errors: int
    resumed_after_batch: int
    mapping: JSON = strawberry.field(description="Column header -> field, as used.")
    problems: list[ImportProblem] = strawberry.field(
        description=f"Refused and duplicate rows (the first {MAX_PROBLEMS})."
    )


@strawberry.type(description="The records a lead was converted into.")
class LeadConversion:
    lead_id: strawberry.ID
    account_id: strawberry.ID
    contact_id: strawberry.ID
    opportunity_id: strawberry.ID | None
    account_created: bool
    contact_created: bool


@strawberry.enum(description="How lead figures are grouped.")
class LeadStatsGroup(enum.Enum):
    SOURCE = "source"
    OWNER = "owner_id"


@strawberry.type(description="First response and conversion for one group of leads.")
class LeadFigures:
    key: str | None = strawberry.field(description="The source value or the owner's id.")
    leads: int
    touched: int
    touched_within_30_minutes: int
    touched_within_30_minutes_share: float
    converted: int = strawberry.field(description="Leads with at least one opportunity.")
    conversion_rate: float


def _decode(file_base64: str) -> bytes:
    try:
        return base64.b64decode(file_base64, validate=True)
    except (binascii.Error, ValueError):
        raise BadUserInput("fileBase64 is not valid base64", field="fileBase64") from None


@strawberry.type(name="Query")
class LeadsQuery:
    @strawberry.field(description="Share of leads touched within 30 minutes, and conversion.")
    def lead_stats(
        self,
        info: Info,
        group_by: LeadStatsGroup,
        since: DateTime | None = None,
        until: DateTime | None = None,
    ) -> list[LeadFigures]:
        ctx: RequestContext = info.context
        with ctx.runtime.db.read() as conn:
            figures = stats.lead_figures(
                conn, ctx.runtime.current(), group_by.value, since, until, ctx.access
            )
        return [
            LeadFigures(
                key=f.key,
                leads=f.leads,
                touched=f.touched,
                touched_within_30_minutes=f.touched_in_time,
                touched_within_30_minutes_share=round(f.touched_in_time_share, 4),
                converted=f.converted,
                conversion_rate=round(f.conversion_rate, 4),
            )
            for f in figures
        ]


@strawberry.type(name="Mutation")
class LeadsMutation:
    @strawberry.mutation(
        description="Import leads from an .xlsx or .csv file (base64, at most ~700 KB)."
    )
    def import_leads(
        self,
        info: Info,
        file_base64: str,
        filename: str,
        mapping: JSON | None = None,
        dry_run: bool = False,
        again: bool = False,
    ) -> ImportResult:
        ctx: RequestContext = info.context
        if mapping is not None and not isinstance(mapping, dict):
            raise BadUserInput("mapping is an object {column header: field}", field="mapping")
        importer = Importer(ctx.runtime, ctx.actor)
        outcome = importer.run(
            _decode(file_base64), filename, "lead", mapping, dry_run=dry_run, again=again
        )
        return ImportResult(
            run_id=strawberry.ID(outcome.run_id) if outcome.run_id else None,
            dry_run=outcome.dry_run,
            rows=outcome.rows,
            created=outcome.created,
            duplicates=outcome.duplicates,
            errors=outcome.errors,
            resumed_after_batch=outcome.resumed_after_batch,
            mapping=outcome.columns,
            problems=[
                ImportProblem(row=p.row, column=p.column, kind=p.kind, reason=p.reason)
                for p in outcome.problems[:MAX_PROBLEMS]
            ],
        )

    @strawberry.mutation(
        description="Merge a lead into another: activities, opportunities and history move."
    )
    def merge_leads(self, info: Info, keep_id: strawberry.ID, merge_id: strawberry.ID) -> JSON:
        ctx: RequestContext = info.context
        records = ctx.runtime.records
        with records.transaction(ctx.actor, Source.GRAPHQL, ctx.request_id) as wctx:
            kept = merge_leads(records, wctx, str(keep_id), str(merge_id))
        return {"id": kept["id"], "mergedFrom": kept["merged_from"]}

    @strawberry.mutation(
        description="Convert a lead: create or link its account and contact, open an opportunity."
    )
    def convert_lead(
        self,
        info: Info,
        id: strawberry.ID,
        account_id: strawberry.ID | None = None,
        contact_id: strawberry.ID | None = None,
        opportunity_name: str | None = None,
        amount: str | None = None,
        create_opportunity: bool = True,
    ) -> LeadConversion:
        ctx: RequestContext = info.context
        records = ctx.runtime.records
        with records.transaction(ctx.actor, Source.GRAPHQL, ctx.request_id) as wctx:
            done = convert_lead(
                records,
                wctx,
                str(id),
                account_id=account_id,
                contact_id=contact_id,
                opportunity_name=opportunity_name,
                amount=amount,
                create_opportunity=create_opportunity,
            )
        return LeadConversion(
            lead_id=strawberry.ID(done.lead["id"]),
            account_id=strawberry.ID(done.account["id"]),
            contact_id=strawberry.ID(done.contact["id"]),
            opportunity_id=strawberry.ID(done.opportunity["id"]) if done.opportunity else None,
            account_created=done.account_created,
            contact_created=done.contact_created,
        )


TYPES: list[type] = [LeadsQuery, LeadsMutation]
