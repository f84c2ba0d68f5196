"""GraphQL: erasure requests and the retention sweep, for administrators.

Consents and the rules are records, read and written through the generated API
(``createConsent``, ``updateConsent(input: {withdrawnAt})``, ``retentionRules``...).
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from qiao.core.errors import Forbidden
from qiao.core.graphql.context import RequestContext
from qiao.core.privacy.erasure import apply_retention, erase_subject
from qiao.core.records.context import Source


@strawberry.type(name="Mutation")
class PrivacyMutation:
    @strawberry.mutation(
        description="Erase a person's data as the retention rules allow (administrators). "
        'Returns {"erased": [...], "kept": [...]}: entity, id, rule, and the action or why '
        "the record stays; the report is kept as an erasure request."
    )
    def erase_subject(
        self,
        info: Info,
        entity: Annotated[str, strawberry.argument(description="The person's entity.")],
        id: Annotated[strawberry.ID, strawberry.argument(description="The person's record.")],
        reason: Annotated[
            str | None, strawberry.argument(description="Why: kept with the erasure request.")
        ] = None,
    ) -> JSON:
        ctx = _admin(info)
        records = ctx.runtime.records
        with records.transaction(ctx.actor, Source.GRAPHQL, ctx.request_id) as wctx:
            report: Any = erase_subject(wctx, entity, str(id), reason)
        return report  # type: ignore[no-any-return]

    @strawberry.mutation(
        description="Delete or anonymise every record whose retention period has ended "
        "(administrators); the daily job runs the same."
    )
    def apply_retention(self, info: Info) -> JSON:
        ctx = _admin(info)
        records = ctx.runtime.records
        with records.transaction(ctx.actor, Source.GRAPHQL, ctx.request_id) as wctx:
            report: Any = apply_retention(wctx)
        return report  # type: ignore[no-any-return]


def _admin(info: Info) -> RequestContext:
    ctx: RequestContext = info.context
    if not ctx.actor.is_admin:
        raise Forbidden("only administrators may erase personal data")
    return ctx


TYPES: list[type] = [PrivacyMutation]
