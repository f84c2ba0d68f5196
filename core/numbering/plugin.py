"""The built-in ``numbering`` plugin: fills declared number fields on create.

Always enabled (``BUILTIN_PLUGINS``). The declarations come from every
enabled plugin's manifests; they are checked against the metadata at start-up,
so a template that names a missing field stops the deployment with a clear
message instead of failing on the first create.
"""

from __future__ import annotations

from typing import Any

from qiao.core.errors import BadUserInput, ConfigurationError
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.manifest import by_entity
from qiao.core.metadata.model import EntityDef, FieldType
from qiao.core.numbering import sequence
from qiao.core.numbering.declaration import SECTION, NumberingDecl
from qiao.core.records.context import WriteContext
from qiao.core.records.host import RecordsHost
from qiao.core.runtime import Runtime

_STATE = "numbering:declarations"


def declarations(runtime: RecordsHost) -> dict[str, list[NumberingDecl]]:
    """Every declared numbering of the runtime's plugins, by entity (read once)."""

    def read(rt: Runtime) -> dict[str, list[NumberingDecl]]:
        return by_entity(
            d for _, manifest in rt.plugins.manifests() for d in manifest.section(SECTION)
        )

    return runtime.state(_STATE, read)


def check(runtime: Runtime) -> None:
    """Refuse declarations that do not fit the metadata (ConfigurationError)."""
    catalog = runtime.current()
    for entity_name, decls in declarations(runtime).items():
        entity = catalog.registry.entities.get(entity_name)
        if entity is None:
            raise ConfigurationError(f"numbering names unknown entity {entity_name!r}")
        for decl in decls:
            field = entity.field(decl.field)
            where = f"numbering of {entity_name}.{decl.field}"
            if field is None or field.computed:
                raise ConfigurationError(f"{where}: the entity has no stored field {decl.field!r}")
            if field.type is not FieldType.STRING:
                raise ConfigurationError(f"{where}: the field must be a string")
            if field.required:
                raise ConfigurationError(
                    f"{where}: declare the field without 'required'; numbering fills it"
                )
            longest = decl.parsed.max_length()
            if field.max_length is not None and field.max_length < longest:
                raise ConfigurationError(
                    f"{where}: numbers are {longest} characters, more than max_length "
                    f"{field.max_length}"
                )


@hookimpl
def qiao_startup(runtime: Runtime) -> None:
    try:
        runtime.current()
    except ConfigurationError:  # no tables yet: 'qiao migrate' runs before any record
        return
    check(runtime)


def _numbered(context: WriteContext, entity: EntityDef, operation: str) -> bool:
    return operation != "delete" and bool(declarations(context.runtime).get(entity.name))


@hookimpl(applies=_numbered)
def qiao_before_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    decls = declarations(context.runtime).get(entity.name)
    if not decls or operation == "delete":
        return
    for decl in decls:
        if operation == "update":
            assert existing is not None
            if decl.field in values and values[decl.field] != existing.get(decl.field):
                raise BadUserInput(
                    f"{entity.name}.{decl.field} is a number given once; it cannot be changed",
                    field=decl.field,
                )
        elif values.get(decl.field) in (None, ""):
            values[decl.field] = next_number(context, decl)


def next_number(context: WriteContext, decl: NumberingDecl) -> str:
    """Take the next number of ``decl`` in the write's transaction."""
    pattern = decl.parsed
    day = decl.local_date(context.now())
    value = sequence.take(context.connection, decl.sequence_name, pattern.period(day))
    return pattern.render(day, value)
