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
from typing import Annotated

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
    column: str | None = strawberry.field(
        description="The column's header, when the problem is in one cell."
    )
    kind: str = strawberry.field(description="What the problem is: error or duplicate.")
    reason: str = strawberry.field(description="What is wrong, or which record it duplicates.")


@strawberry.type(description="What an import did, or (dry run) would do.")
class ImportResult:
    run_id: strawberry.ID | None = strawberry.field(
        description="The import run, to resume it; null for a dry run."
    )
    dry_run: bool = strawberry.field(description="Whether nothing was written.")
    rows: int = strawberry.field(description="Data rows read from the file.")
    created: int = strawberry.field(description="Leads created.")
    duplicates: int = strawberry.field(
        description="Rows skipped as duplicates of existing leads or contacts."
    )
    errors: int = strawberry.field(description="Rows refused for bad values.")
    resumed_after_batch: int = strawberry.field(
        description="Batches an earlier, interrupted run of the same file had written."
    )
    mapping: JSON = strawberry.field(description="Column header -> field, as used.")
    problems: list[ImportProblem] = strawberry.field(
        description=f"Refused and duplicate rows (the first {MAX_PROBLEMS})."
    )


@strawberry.type(description="The records a lead was converted into.")
class LeadConversion:
    lead_id: strawberry.ID = strawberry.field(description="The converted lead.")
    account_id: strawberry.ID = strawberry.field(description="The account it went to.")
    contact_id: strawberry.ID = strawberry.field(
        description="The contact it became or was linked to."
    )
    opportunity_id: strawberry.ID | None = strawberry.field(
        description="The opportunity opened, if one was."
    )
    account_created: bool = strawberry.field(description="Whether the account is new.")
    contact_created: bool = strawberry.field(description="Whether the contact is new.")


@strawberry.enum(description="How lead figures are grouped.")
class LeadStatsGroup(enum.Enum):
    #: What ``value`` is once strawberry has read the definitions below.
    _value_: str

    SOURCE = strawberry.enum_value("source", description="By the lead's source.")
    OWNER = strawberry.enum_value("owner_id", description="By the lead's owner.")


@strawberry.type(description="First response and conversion for one group of leads.")
class LeadFigures:
    key: str | None = strawberry.field(description="The source value or the owner's id.")
    leads: int = strawberry.field(description="Leads in the group.")
    touched: int = strawberry.field(description="Leads with a first activity logged.")
    touched_within_30_minutes: int = strawberry.field(
        description="Leads first touched within 30 minutes of arriving."
    )
    touched_within_30_minutes_share: float = strawberry.field(
        description="That count over all leads, 0 to 1."
    )
    converted: int = strawberry.field(description="Leads with at least one opportunity.")
    conversion_rate: float = strawberry.field(description="Converted leads over all leads, 0 to 1.")


def _decode(file_base64: str) -> bytes:
    try:
        return base64.b64decode(file_base64, validate=True)
    except (binascii.Error, ValueError):
        raise BadUserInput("fileBase64 is not valid base64", field="fileBase64") from None


# strawberry types field() and mutation() called with options as returning Any, so
# mypy finds the decorators below untyped; the resolvers themselves are checked.
@strawberry.type(name="Query")
class LeadsQuery:
    @strawberry.field(description="Share of leads touched within 30 minutes, and conversion.")  # type: ignore[untyped-decorator]
    def lead_stats(
        self,
        info: Info,
        group_by: Annotated[LeadStatsGroup, strawberry.argument(description="How to group.")],
        since: Annotated[
            DateTime | None, strawberry.argument(description="Leads created at or after this.")
        ] = None,
        until: Annotated[
            DateTime | None, strawberry.argument(description="Leads created before this.")
        ] = None,
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
    @strawberry.mutation(  # type: ignore[untyped-decorator]
        description="Import leads from an .xlsx or .csv file (base64, at most ~700 KB)."
    )
    def import_leads(
        self,
        info: Info,
        file_base64: Annotated[
            str, strawberry.argument(description="The xlsx or csv file, base64-encoded.")
        ],
        filename: Annotated[
            str, strawberry.argument(description="Its name; the extension tells its format.")
        ],
        mapping: Annotated[
            JSON | None,
            strawberry.argument(description="Column header -> field; guessed when left out."),
        ] = None,
        dry_run: Annotated[
            bool, strawberry.argument(description="Check every row and write nothing.")
        ] = False,
        again: Annotated[
            bool,
            strawberry.argument(description="Import a file already imported, as a new run."),
        ] = False,
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
            mapping=JSON(outcome.columns),
            problems=[
                ImportProblem(row=p.row, column=p.column, kind=p.kind, reason=p.reason)
                for p in outcome.problems[:MAX_PROBLEMS]
            ],
        )

    @strawberry.mutation(  # type: ignore[untyped-decorator]
        description="Merge a lead into another: activities, opportunities and history move."
    )
    def merge_leads(
        self,
        info: Info,
        keep_id: Annotated[strawberry.ID, strawberry.argument(description="The lead to keep.")],
        merge_id: Annotated[
            strawberry.ID, strawberry.argument(description="The lead merged into it and removed.")
        ],
    ) -> JSON:
        ctx: RequestContext = info.context
        records = ctx.runtime.records
        with records.transaction(ctx.actor, Source.GRAPHQL, ctx.request_id) as wctx:
            kept = merge_leads(records, wctx, str(keep_id), str(merge_id))
        return JSON({"id": kept["id"], "mergedFrom": kept["merged_from"]})

    @strawberry.mutation(  # type: ignore[untyped-decorator]
        description="Convert a lead: create or link its account and contact, open an opportunity."
    )
    def convert_lead(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The lead to convert.")],
        account_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="An existing account; one is made when left out."),
        ] = None,
        contact_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="An existing contact; one is found or made."),
        ] = None,
        opportunity_name: Annotated[
            str | None, strawberry.argument(description="The opportunity's name.")
        ] = None,
        amount: Annotated[
            str | None, strawberry.argument(description="The opportunity's amount (decimal).")
        ] = None,
        create_opportunity: Annotated[
            bool, strawberry.argument(description="Whether to open an opportunity.")
        ] = True,
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
