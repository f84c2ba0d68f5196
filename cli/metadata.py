"""``qiao entity``, ``qiao field`` and ``qiao metadata``: custom metadata from the shell.

The commands call the same :class:`~qiao.core.customisation.changes.MetadataChanges`
as the GraphQL admin mutations, as the system actor, so the same checks apply;
running servers pick the change up at their next metadata version check.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from qiao.cli.state import CliState, pass_state
from qiao.core.customisation.changes import Change, MetadataChanges
from qiao.core.errors import BadUserInput
from qiao.core.metadata import store
from qiao.core.metadata.model import STRING_TYPES, FieldType
from qiao.core.records.context import Actor

_NOTE = click.option("--note", help="Why the change is made; kept in the history.")
_FORCE = click.option(
    "--force", is_flag=True, help="Go ahead even though stored values would be lost."
)


def _read_file(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadUserInput(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise BadUserInput(f"{path}: not valid YAML or JSON: {exc}") from None


def _entity_definition(path: Path) -> Any:
    """One entity, as a mapping or as a manifest whose ``entities`` list holds just it."""
    data = _read_file(path)
    if isinstance(data, dict) and "entities" in data:
        entities = data["entities"]
        if not isinstance(entities, list) or len(entities) != 1 or data.keys() != {"entities"}:
            raise BadUserInput(f"{path}: give exactly one entity (and no 'extends')")
        return entities[0]
    return data


def _changes(state: CliState) -> MetadataChanges:
    return MetadataChanges(state.runtime())


def _done(what: str, change: Change) -> None:
    click.echo(f"{what} (metadata version {change.version})")


# -- qiao entity ------------------------------------------------------------------------------


@click.group("entity")
def entity() -> None:
    """Entities (objects): list them, create and drop custom ones."""


@entity.command("create")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_NOTE
@pass_state
def entity_create(state: CliState, file: Path, note: str | None) -> None:
    """Create a custom entity from FILE, a YAML or JSON manifest of one entity."""
    change = _changes(state).create_entity(
        _entity_definition(file), actor=Actor.system(), note=note
    )
    _done(f"created entity {change.entity}", change)


@entity.command("list")
@pass_state
def entity_list(state: CliState) -> None:
    """Every entity: name, plural, who declared it, number of fields, label."""
    registry = state.runtime().current().registry
    for e in sorted(registry.entities.values(), key=lambda e: e.name):
        label = e.label.text("zh-CN")
        click.echo(f"{e.name:<24} {e.plural:<24} {e.source:<10} {len(e.fields):>3}  {label}")


@entity.command("drop")
@click.argument("name")
@_FORCE
@_NOTE
@pass_state
def entity_drop(state: CliState, name: str, force: bool, note: str | None) -> None:
    """Drop the custom entity NAME with its table (records need --force)."""
    change = _changes(state).drop_entity(name, actor=Actor.system(), force=force, note=note)
    _done(f"dropped entity {change.entity}", change)


# -- qiao field -------------------------------------------------------------------------------


def _field_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The inline form of a field definition; a FILE argument replaces all of them."""
    options = [
        click.option("--type", "type_", type=click.Choice([t.value for t in FieldType])),
        click.option("--label-en", help="English label."),
        click.option("--label-zh", help="Simplified Chinese label."),
        click.option("--required/--optional", default=None),
        click.option("--unique/--not-unique", default=None),
        click.option("--indexed/--not-indexed", default=None),
        click.option("--max-length", type=int),
        click.option("--min-length", type=int),
        click.option("--precision", type=int),
        click.option("--scale", type=int),
        click.option("--value", "values", multiple=True, help="A picklist value (repeat)."),
        click.option("--target", help="The entity a relation points at."),
        click.option("--inverse", help="The name of the relation's reverse side."),
        click.option("--default", help="The default value (YAML syntax for non-text types)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


#: Options that belong to one type, left behind when ``--type`` changes it.
_TYPE_OPTIONS = frozenset(
    {"max_length", "min_length", "min", "max", "precision", "scale", "currency", "values"}
)
_PLAIN_OPTIONS = (
    "required",
    "unique",
    "indexed",
    "max_length",
    "min_length",
    "precision",
    "scale",
    "target",
    "inverse",
)


def _inline(options: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (a definition) with the options that were given laid over it."""
    data = dict(base)
    if options["type_"] and options["type_"] != data.get("type"):
        data = {k: v for k, v in data.items() if k not in _TYPE_OPTIONS}
        data["type"] = options["type_"]
    label = dict(data.get("label") or {})
    if options["label_en"]:
        label["en"] = options["label_en"]
    if options["label_zh"]:
        label["zh-CN"] = options["label_zh"]
    if not label and "name" in data:
        label["en"] = str(data["name"]).replace("_", " ").capitalize()
    data["label"] = label
    for key in _PLAIN_OPTIONS:
        if options[key] is not None:
            data[key] = options[key]
    if options["values"]:
        data["values"] = [{"value": v} for v in options["values"]]
    if options["default"] is not None:
        text = options["default"]
        textual = FieldType(data.get("type", "string")) in STRING_TYPES | {FieldType.ENUM}
        data["default"] = text if textual else yaml.safe_load(text)
    return data


@click.group("field")
def field() -> None:
    """Custom fields: add, alter and drop them on any entity."""


@field.command("add")
@click.argument("entity_name", metavar="ENTITY")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="The field's name (snake_case).")
@_field_options
@_NOTE
@pass_state
def field_add(
    state: CliState,
    entity_name: str,
    file: Path | None,
    name: str | None,
    note: str | None,
    **options: Any,
) -> None:
    """Add a field to ENTITY, from FILE (YAML or JSON) or from the options.

    Example: qiao field add account --name voltage --type decimal --scale 1
    --label-en Voltage --label-zh 电压
    """
    if file is not None:
        definition = _read_file(file)
    else:
        if not name or not options["type_"]:
            raise BadUserInput("give a FILE, or --name and --type")
        definition = _inline(options, {"name": name})
    change = _changes(state).add_field(entity_name, definition, actor=Actor.system(), note=note)
    _done(f"added field {change.entity}.{change.field}", change)


@field.command("alter")
@click.argument("entity_name", metavar="ENTITY")
@click.argument("name")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_field_options
@_FORCE
@_NOTE
@pass_state
def field_alter(
    state: CliState,
    entity_name: str,
    name: str,
    file: Path | None,
    force: bool,
    note: str | None,
    **options: Any,
) -> None:
    """Change the custom field ENTITY.NAME: the whole definition from FILE, or the
    options given laid over the current definition.

    Example: qiao field alter account voltage --scale 2
    """
    if file is not None:
        definition = _read_file(file)
    else:
        current = state.runtime().current().entity(entity_name).field(name)
        if current is None:
            raise BadUserInput(f"{entity_name} has no field {name!r}")
        definition = _inline(options, current.as_data())
    change = _changes(state).alter_field(
        entity_name, name, definition, actor=Actor.system(), force=force, note=note
    )
    _done(f"altered field {change.entity}.{change.field}", change)


@field.command("drop")
@click.argument("entity_name", metavar="ENTITY")
@click.argument("name")
@_FORCE
@_NOTE
@pass_state
def field_drop(state: CliState, entity_name: str, name: str, force: bool, note: str | None) -> None:
    """Drop the custom field ENTITY.NAME and its column (values need --force)."""
    change = _changes(state).drop_field(
        entity_name, name, actor=Actor.system(), force=force, note=note
    )
    _done(f"dropped field {change.entity}.{change.field}", change)


# -- qiao metadata ----------------------------------------------------------------------------


@click.group("metadata")
def metadata() -> None:
    """The metadata version and its history."""


@metadata.command("history")
@click.option("--limit", default=50, show_default=True, help="How many changes to show.")
@pass_state
def metadata_history(state: CliState, limit: int) -> None:
    """The latest metadata changes, newest first."""
    with state.runtime().db.read() as conn:
        rows = store.history(conn, limit)
    for row in rows:
        target = row["entity"] + (f".{row['field']}" if row["field"] else "")
        at = row["at"].strftime("%Y-%m-%d %H:%M:%S")
        note = f"  {row['note']}" if row["note"] else ""
        click.echo(f"{row['version']:>5}  {at}  {row['operation']:<14} {target}{note}")


COMMANDS: list[click.Command] = [entity, field, metadata]
