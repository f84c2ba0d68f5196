"""The built-in ``documents`` plugin: document templates, rendered documents, QR codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qiao.core.errors import BadUserInput
from qiao.core.hookmarkers import hookimpl
from qiao.core.records.context import WriteContext

MANIFEST = Path(__file__).with_name("entities.yaml")


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [MANIFEST]


@hookimpl
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from qiao.core.documents import graphql

    return graphql.TYPES


@hookimpl(entities=["document_template"])
def qiao_before_record_write(
    context: WriteContext,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    if operation == "delete":
        return
    target = ((existing or {}) | values).get("entity")
    if target not in context.catalog.registry.entities:
        raise BadUserInput(f"no entity {target!r}", field="entity")
