"""Core GraphQL fields that are not generated per entity: who am I, and metadata.

Admins read the deployment's entities and fields with ``metadata`` and change
custom ones with the mutations below; a change is live for the next request,
in this process at once and in the others after their next version check.
"""

from __future__ import annotations

import enum

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from qiao.core.graphql.context import RequestContext
from qiao.core.metadata import store
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType, Label
from qiao.core.metadata.registry import camel, type_name
from qiao.core.permissions.access import Access
from qiao.core.permissions.rights import FieldAccess


@strawberry.type(description="The authenticated caller.")
class Viewer:
    user_id: strawberry.ID | None = strawberry.field(
        description="The user's id; null for the system."
    )
    username: str = strawberry.field(description="The user's sign-in name.")
    is_admin: bool = strawberry.field(description="Whether the caller is an administrator.")


@strawberry.type(description="A label in English and Simplified Chinese.")
class MetadataLabel:
    en: str | None = strawberry.field(description="The English text.")
    zh_cn: str | None = strawberry.field(name="zhCN", description="The Simplified Chinese text.")

    @classmethod
    def of(cls, label: Label | None) -> MetadataLabel | None:
        return None if label is None else cls(en=label.en, zh_cn=label.zh_cn)


@strawberry.enum(description="What the caller may do with a field, by their roles' field rules.")
class MetadataFieldAccess(enum.Enum):
    WRITE = strawberry.enum_value("write", description="Read it and write it.")
    READ = strawberry.enum_value("read", description="Read it; writing it is FORBIDDEN.")
    MASKED = strawberry.enum_value(
        "masked",
        description="Read it masked (138****5678); filtering or sorting by it is FORBIDDEN.",
    )
    NONE = strawberry.enum_value(
        "none", description="Not at all: selected, it answers null with a FORBIDDEN error."
    )


@strawberry.type(description="What the caller may do with an entity's records, by their roles.")
class MetadataEntityAccess:
    read: bool = strawberry.field(
        description="Whether they may read some of its records (shared ones count)."
    )
    create: bool = strawberry.field(description="Whether they may create records.")
    update: bool = strawberry.field(
        description="Whether they may change some of its records (shared ones count)."
    )
    delete: bool = strawberry.field(description="Whether they may delete some of its records.")
    export: bool = strawberry.field(description="Whether they may export some of its records.")

    @classmethod
    def of(cls, access: Access, entity: str) -> MetadataEntityAccess:
        return cls(
            read=access.can(entity, "read"),
            create=access.can(entity, "create"),
            update=access.can(entity, "update"),
            delete=access.can(entity, "delete"),
            export=access.can(entity, "export"),
        )


@strawberry.type(description="One field of an entity, as declared.")
class MetadataField:
    name: str = strawberry.field(
        description="The field's name as declared (snake_case): what definitions, formulas and "
        "alterField use."
    )
    api_name: str = strawberry.field(
        description="Its name in the API (camelCase, as annualRevenue): the object field, "
        "the input field (a relation's is idApiName), filter and error fields."
    )
    id_api_name: str | None = strawberry.field(
        description="For a relation, the API name of the related record's id (as ownerId); "
        "null otherwise."
    )
    type: str = strawberry.field(
        description="Its type: string, text, integer, decimal, boolean, date, datetime, "
        "enum, relation, email, phone, url or json."
    )
    label: MetadataLabel = strawberry.field(description="Its label.")
    required: bool = strawberry.field(description="Whether a record must have a value.")
    unique: bool = strawberry.field(description="Whether no two records may share a value.")
    indexed: bool = strawberry.field(description="Whether the database indexes it for lookups.")
    max_length: int | None = strawberry.field(
        description="The longest text it holds, in characters."
    )
    precision: int | None = strawberry.field(description="A decimal's total digits.")
    scale: int | None = strawberry.field(description="A decimal's digits after the point.")
    values: list[str] = strawberry.field(description="An enum's values, in order.")
    target: str | None = strawberry.field(
        description="The entity a relation points to, as declared (snake_case)."
    )
    target_type: str | None = strawberry.field(
        description="The type name of the entity a relation points to (as Account)."
    )
    inverse: str | None = strawberry.field(
        description="The name of the relation's list on its target."
    )
    default: JSON | None = strawberry.field(
        description="The value a new record gets when none is given."
    )
    formula: str | None = strawberry.field(
        description="The formula of a formula field (docs/formulas.md); null otherwise."
    )
    rollup: JSON | None = strawberry.field(
        description="The rollup spec of a rollup field (docs/formulas.md); null otherwise."
    )
    system_computed: bool = strawberry.field(
        description="A formula or rollup computed over every record, whatever its reader may "
        "see; false computes it under the reader's row rules (docs/formulas.md)."
    )
    custom: bool = strawberry.field(
        description="Added by an administrator, so it may be altered or dropped."
    )
    definition: JSON = strawberry.field(
        description="The whole declaration in the manifest format (what alterField takes)."
    )
    access: MetadataFieldAccess = strawberry.field(
        description="What the caller may do with it (computed fields are never written)."
    )

    @classmethod
    def of(cls, field: FieldDef, custom: bool, access: FieldAccess) -> MetadataField:
        data = field.as_data()
        return cls(
            access=MetadataFieldAccess(access.value),
            name=field.name,
            api_name=camel(field.name),
            id_api_name=camel(field.column) if field.type is FieldType.RELATION else None,
            type=field.type.value,
            label=MetadataLabel(en=field.label.en, zh_cn=field.label.zh_cn),
            required=field.required,
            unique=field.unique,
            indexed=field.indexed,
            max_length=field.effective_max_length,
            precision=field.precision,
            scale=field.scale,
            values=list(field.enum_values),
            target=field.target,
            target_type=type_name(field.target) if field.target else None,
            inverse=field.inverse,
            default=data.get("default"),
            formula=field.formula,
            rollup=field.rollup,
            system_computed=field.system_computed,
            custom=custom,
            definition=data,
        )


@strawberry.type(description="A validation rule: a formula every written record must satisfy.")
class MetadataValidationRule:
    name: str = strawberry.field(description="The rule's name.")
    formula: str = strawberry.field(description="The condition every written record must satisfy.")
    message: str = strawberry.field(description="What a refused write is told.")
    field: str | None = strawberry.field(
        description="The field the message is shown on, if any, as declared (snake_case)."
    )
    api_field: str | None = strawberry.field(
        description="That field's API name: what extensions.field says when the rule refuses."
    )
    custom: bool = strawberry.field(description="Added by an administrator, so it may be removed.")


@strawberry.type(description="An entity (object) with its fields.")
class MetadataEntity:
    name: str = strawberry.field(
        description="The entity's name as declared (snake_case): what definitions and the CLI use."
    )
    type_name: str = strawberry.field(
        description="Its GraphQL type name (as SalesOrder): what __typename says and what "
        "auditTrail and submitForApproval take."
    )
    api_name: str = strawberry.field(
        description="The API name of the query that reads one record (as salesOrder)."
    )
    plural: str = strawberry.field(description="Its plural, as declared (snake_case).")
    api_plural: str = strawberry.field(
        description="The API name of the query that lists its records (as salesOrders)."
    )
    label: MetadataLabel = strawberry.field(description="Its label.")
    plural_label: MetadataLabel | None = strawberry.field(description="Its plural label.")
    source: str = strawberry.field(description="The declaring plugin, or 'custom'.")
    fields: list[MetadataField] = strawberry.field(description="Its fields, as declared.")
    validation_rules: list[MetadataValidationRule] = strawberry.field(
        description="Its validation rules."
    )
    access: MetadataEntityAccess = strawberry.field(
        description="What the caller may do with its records."
    )


@strawberry.type(description="The deployment's metadata at one version.")
class Metadata:
    version: int = strawberry.field(description="The metadata version: it rises with every change.")
    entities: list[MetadataEntity] = strawberry.field(description="Every entity, by name.")


def _entity(
    entity: EntityDef,
    custom_fields: set[tuple[str, str]],
    custom_rules: set[tuple[str, str]],
    access: Access,
) -> MetadataEntity:
    custom = entity.source == "custom"
    return MetadataEntity(
        access=MetadataEntityAccess.of(access, entity.name),
        name=entity.name,
        type_name=type_name(entity.name),
        api_name=camel(entity.name),
        plural=entity.plural,
        api_plural=camel(entity.plural),
        label=MetadataLabel(en=entity.label.en, zh_cn=entity.label.zh_cn),
        plural_label=MetadataLabel.of(entity.plural_label),
        source=entity.source,
        fields=[
            MetadataField.of(
                f,
                custom or (entity.name, f.name) in custom_fields,
                access.effective_access(entity.name, f.name),
            )
            for f in entity.fields
        ],
        validation_rules=[
            MetadataValidationRule(
                name=r.name,
                formula=r.formula,
                message=r.message,
                field=r.field,
                api_field=camel(r.field) if r.field else None,
                custom=custom or (entity.name, r.name) in custom_rules,
            )
            for r in entity.validation_rules
        ],
    )


@strawberry.type(name="Query")
class CoreQuery:
    @strawberry.field(description="The caller the request's token belongs to.")
    def me(self, info: Info) -> Viewer:
        ctx: RequestContext = info.context
        actor = ctx.actor
        return Viewer(user_id=actor.user_id, username=actor.username, is_admin=actor.is_admin)

    @strawberry.field(
        description="Every entity and field, at the schema's metadata version, with what the "
        "caller may do with each."
    )
    def metadata(self, info: Info) -> Metadata:
        ctx: RequestContext = info.context
        registry = ctx.built.catalog.registry
        with ctx.runtime.db.read() as conn:
            custom_fields = store.custom_field_names(conn)
            custom_rules = store.custom_rule_names(conn)
        entities = sorted(registry.entities.values(), key=lambda e: e.name)
        return Metadata(
            version=registry.version,
            entities=[_entity(e, custom_fields, custom_rules, ctx.access) for e in entities],
        )


def core_types() -> list[tuple[str, type]]:
    """The root types merged into every schema, next to the generated fields."""
    return [("core", CoreQuery)]
