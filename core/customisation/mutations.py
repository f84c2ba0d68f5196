"""Admins' metadata changes over GraphQL: custom entities, fields and validation rules.

The built-in ``core`` plugin adds these mutations to every schema through the
``qiao_graphql_types`` hook, so the GraphQL layer itself knows nothing of the
change service; each mutation calls :class:`MetadataChanges` as the caller.
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from qiao.core.customisation.changes import Change, MetadataChanges
from qiao.core.graphql.context import RequestContext
from qiao.core.records.context import Actor, Source

_DEFINITION_HELP = (
    "in the manifest format of docs/manifest.md, keys in snake_case, e.g. "
    '{"name": "voltage", "type": "decimal", "scale": 1, '
    '"label": {"en": "Voltage", "zh-CN": "电压"}}; a formula field adds '
    '"formula": "ROUND(amount * rate, 2)", a rollup field "rollup": {...} (docs/formulas.md)'
)


Note = Annotated[
    str | None,
    strawberry.argument(description="Why: kept with the change in the metadata history."),
]
Force = Annotated[
    bool,
    strawberry.argument(description="Go ahead although stored values or records will be lost."),
]
Definition = Annotated[
    JSON, strawberry.argument(description="The declaration, in the manifest format.")
]
EntityName = Annotated[str, strawberry.argument(description="The entity's name.")]
FieldName = Annotated[str, strawberry.argument(description="The field's name.")]
RuleName = Annotated[str, strawberry.argument(description="The validation rule's name.")]


@strawberry.type(description="The result of a metadata change.")
class MetadataChange:
    version: int = strawberry.field(description="The metadata version the change created.")
    operation: str = strawberry.field(
        description="What was done: create_entity, add_field, alter_field..."
    )
    entity: str = strawberry.field(description="The entity changed.")
    field: str | None = strawberry.field(
        description="The field changed, if the change was to a field."
    )

    @classmethod
    def of(cls, change: Change) -> MetadataChange:
        return cls(
            version=change.version,
            operation=change.operation,
            entity=change.entity,
            field=change.field,
        )


def _changes(info: Info) -> tuple[MetadataChanges, Actor]:
    ctx: RequestContext = info.context
    return MetadataChanges(ctx.runtime, Source.GRAPHQL, ctx.request_id), ctx.actor


@strawberry.type(name="Mutation")
class CustomisationMutation:
    @strawberry.mutation(description=f"Create a custom entity; definition {_DEFINITION_HELP}.")
    def create_entity(
        self, info: Info, definition: Definition, note: Note = None
    ) -> MetadataChange:
        changes, actor = _changes(info)
        return MetadataChange.of(changes.create_entity(definition, actor=actor, note=note))

    @strawberry.mutation(
        description="Drop a custom entity, its table and its records (records need force)."
    )
    def drop_entity(
        self, info: Info, name: EntityName, force: Force = False, note: Note = None
    ) -> MetadataChange:
        changes, actor = _changes(info)
        return MetadataChange.of(changes.drop_entity(name, actor=actor, force=force, note=note))

    @strawberry.mutation(description=f"Add a field to an entity; definition {_DEFINITION_HELP}.")
    def add_field(
        self, info: Info, entity: EntityName, definition: Definition, note: Note = None
    ) -> MetadataChange:
        changes, actor = _changes(info)
        return MetadataChange.of(changes.add_field(entity, definition, actor=actor, note=note))

    @strawberry.mutation(
        description="Replace a custom field's declaration (the whole of it, name optional); "
        f"definition {_DEFINITION_HELP}. A change that would lose stored values is refused "
        "unless force, which clears those values."
    )
    def alter_field(
        self,
        info: Info,
        entity: EntityName,
        name: FieldName,
        definition: Definition,
        force: Force = False,
        note: Note = None,
    ) -> MetadataChange:
        changes, actor = _changes(info)
        change = changes.alter_field(entity, name, definition, actor=actor, force=force, note=note)
        return MetadataChange.of(change)

    @strawberry.mutation(description="Drop a custom field and its column (values need force).")
    def drop_field(
        self,
        info: Info,
        entity: EntityName,
        name: FieldName,
        force: Force = False,
        note: Note = None,
    ) -> MetadataChange:
        changes, actor = _changes(info)
        change = changes.drop_field(entity, name, actor=actor, force=force, note=note)
        return MetadataChange.of(change)

    @strawberry.mutation(
        description="Add a validation rule to an entity: "
        '{"name": "discount_cap", "formula": "discount <= 0.3", "message": "折扣不能超过 30%", '
        '"field": "discount"} (docs/formulas.md). Writes that break it are refused from now on.'
    )
    def add_validation_rule(
        self, info: Info, entity: EntityName, definition: Definition, note: Note = None
    ) -> MetadataChange:
        changes, actor = _changes(info)
        change = changes.add_validation_rule(entity, definition, actor=actor, note=note)
        return MetadataChange.of(change)

    @strawberry.mutation(description="Remove a validation rule an administrator added.")
    def drop_validation_rule(
        self, info: Info, entity: EntityName, name: RuleName, note: Note = None
    ) -> MetadataChange:
        changes, actor = _changes(info)
        change = changes.drop_validation_rule(entity, name, actor=actor, note=note)
        return MetadataChange.of(change)
