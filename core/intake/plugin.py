"""The built-in ``intake`` plugin: public forms declared by templates (docs/intake.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qiao.core.errors import BadUserInput
from qiao.core.hookmarkers import hookimpl
from qiao.core.intake import links, routes
from qiao.core.intake.forms import IntakeFormDecl
from qiao.core.metadata.model import FieldType
from qiao.core.records.context import WriteContext

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from qiao.core.runtime import Runtime

MANIFEST = Path(__file__).with_name("entities.yaml")


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [MANIFEST]


@hookimpl
def qiao_routes(runtime: Runtime) -> list[BaseRoute]:
    return routes.routes(runtime)


@hookimpl(entities=["intake_form"])
def qiao_before_record_write(
    context: WriteContext,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    if operation == "delete":
        return
    if not values.get("secret") and not (existing or {}).get("secret"):
        values["secret"] = links.new_secret()
    _check_form(context, (existing or {}) | values)


def _check_form(context: WriteContext, record: dict[str, Any]) -> None:
    """A form must create an existing entity from its fields, prefilling a relation."""
    keys = IntakeFormDecl.model_fields
    form = {k: v for k, v in record.items() if k in keys and v is not None}
    catalog = context.catalog
    if form.get("entity") not in catalog.registry.entities:
        raise BadUserInput(f"no entity {form.get('entity')!r}", field="entity")
    entity = catalog.entity(form["entity"])
    for name in form.get("fields") or ():
        field = entity.field(name)
        if field is None or field.computed:
            raise BadUserInput(f"{entity.name} has no field {name!r} to fill", field="fields")
    prefill = form.get("prefill")
    if prefill:
        field = entity.field(prefill)
        if field is None or field.type is not FieldType.RELATION:
            raise BadUserInput(f"{entity.name}.{prefill} is not a relation", field="prefill")
