"""``conflictSearch``: who of that name does the firm know, as far as the caller may see.

A lawyer types a name (深圳云帆, 云帆智能科技股份有限公司) before intake. The search reads the
parties of matters, the accounts and the contacts whose name keys contain the name's key,
through the records service **as the caller**, so an information wall hides the walled
matter's parties exactly as it hides the matter. The formal check that decides whether a
matter may open is :mod:`conflicts`, which is complete whoever asks.
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from qiao.api import Actor, BadUserInput, RequestContext

from . import names

LIMIT = 200
#: The entities a conflict search reads, with their GraphQL type names.
SEARCHED = {"matter_party": "MatterParty", "account": "Account", "contact": "Contact"}


@strawberry.type(description="A record whose name matches a conflict search.")
class ConflictSearchHit:
    entity: str = strawberry.field(
        description="The record's type, as __typename names it: MatterParty, Account or Contact."
    )
    record_id: strawberry.ID = strawberry.field(description="The matching record's id.")
    name: str = strawberry.field(description="The name that matched, as stored.")
    matched_as: str = strawberry.field(description="The party's role, or the record's type.")
    match_kind: str = strawberry.field(description="EXACT or NEAR.")
    matter_id: strawberry.ID | None = strawberry.field(description="The party's matter.")


def search(context: RequestContext, name: str) -> list[ConflictSearchHit]:
    key = names.key(name)
    if len(key) < 2:
        raise BadUserInput("检索名称至少两个字", field="name")
    runtime, actor = context.runtime, context.actor
    hits: list[ConflictSearchHit] = []
    with runtime.db.read() as conn:
        for entity, typename in SEARCHED.items():
            page = runtime.records.list(
                conn, entity, filter={"name_keys": {"contains": key}}, first=LIMIT, actor=actor
            )
            for record in page.records:
                exact = names.full_form(record["name"]) == names.full_form(name)
                hits.append(
                    ConflictSearchHit(
                        entity=typename,
                        record_id=strawberry.ID(record["id"]),
                        name=record["name"],
                        matched_as=record.get("party_role") or typename,
                        match_kind="EXACT" if exact else "NEAR",
                        matter_id=record.get("matter_id"),
                    )
                )
    return hits


# strawberry types field() and mutation() called with options as returning Any, so
# mypy finds the decorators below untyped; the resolvers themselves are checked.
@strawberry.type
class Query:
    @strawberry.field(  # type: ignore[untyped-decorator]
        description="Parties, accounts and contacts whose names match (exact or near), "
        "within the caller's rules, information walls included."
    )
    def conflict_search(
        self,
        info: Info,
        name: Annotated[
            str, strawberry.argument(description="The name to search, two characters or more.")
        ],
    ) -> list[ConflictSearchHit]:
        context: RequestContext = info.context
        if not isinstance(context.actor, Actor) or context.actor.user_id is None:
            raise BadUserInput("sign in to search", field="name")
        return search(context, name)
