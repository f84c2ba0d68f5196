"""``qiao export``: a filtered, ordered list of an entity to a CSV or xlsx file.

The same export as the API's ``POST /export/{entity}`` (qiao.core.exports),
acting as the user named by ``--as``, under that user's rules and ``export``
right, audited. The file is written beside its destination under a temporary
name (mode 0600: exports hold personal data) and renamed into place once
complete and audited, so a refused or failed export leaves no file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qiao.cli.progress import progress
from qiao.cli.state import CliState, pass_state
from qiao.core.errors import BadUserInput, Forbidden, NotFound
from qiao.core.exports.columns import Names
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

if TYPE_CHECKING:
    from qiao.core.exports.export import Export


@click.command("export")
@click.argument("entity")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write (replaced if it exists).",
)
@click.option(
    "--format",
    "format_",
    metavar="csv|xlsx",
    help="The file format (default: from the output file's extension).",
)
@click.option("--as", "username", required=True, help="The user whose rules the export follows.")
@click.option(
    "--filter",
    "filter_",
    metavar="JSON",
    help='The GraphQL list\'s filter as JSON: \'{"stage": {"eq": "WON"}}\'.',
)
@click.option(
    "--order",
    metavar="JSON",
    help='The GraphQL list\'s orderBy as JSON: \'[{"field": "AMOUNT", "direction": "DESC"}]\'.',
)
@click.option(
    "--names",
    type=click.Choice([n.value for n in Names]),
    default=Names.LABELS.value,
    show_default=True,
    help="Headers (and enum values) as labels or as API names.",
)
@click.option("--bom", is_flag=True, help="Start a CSV file with a UTF-8 BOM (for Excel).")
@pass_state
def export(
    state: CliState,
    entity: str,
    output: Path,
    format_: str | None,
    username: str,
    filter_: str | None,
    order: str | None,
    names: str,
    bom: bool,
) -> None:
    """Write ENTITY's records (those the --as user may export) to a CSV or xlsx file."""
    chosen = format_ or output.suffix.lstrip(".")
    if not chosen:
        raise BadUserInput("give --format csv or xlsx, or an output file ending in .csv or .xlsx")
    if not output.absolute().parent.is_dir():
        raise BadUserInput(f"{output.parent} is not a folder; make it first")
    # The export and the GraphQL schema load here, not with the module: other commands skip them.
    from qiao.core.exports.export import Export, ExportRequest
    from qiao.core.graphql.service import GraphQLService

    runtime = state.runtime()
    wanted = ExportRequest(
        entity=entity,
        format=chosen,
        filter=_json(filter_, "--filter"),
        order_by=_json(order, "--order"),
        names=names,
        bom=bom,
    )
    built = GraphQLService(runtime).schema()
    checked = Export(runtime, built, _actor(runtime, username), wanted, Source.CLI)
    with progress(f"Exporting {entity}", total=checked.total) as steps:
        _write(output, checked, steps.done)
    noun = "record" if checked.total == 1 else "records"
    click.echo(f"Exported {checked.total} {entity} {noun} to {output} ({checked.format.value}).")


def _json(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadUserInput(f"{option} is not valid JSON: {exc}") from None


def _actor(runtime: Runtime, username: str) -> Actor:
    """The user ``--as`` names, acting as themselves (an inactive user may not export)."""
    with runtime.db.read() as conn:
        found = runtime.records.list(
            conn, "user", filter={"username": {"eq": username}}, first=1, actor=Actor.system()
        ).records
    if not found:
        raise NotFound(f"no user named {username!r}", field="as")
    user = found[0]
    if not user.get("is_active", True):
        raise Forbidden(f"the user {username!r} is deactivated")
    return Actor(user_id=user["id"], username=user["username"], is_admin=bool(user["is_admin"]))


def _write(output: Path, checked: Export, on_rows: Any) -> None:
    """The export's bytes into ``output``, replacing it only once all were written."""
    folder = output.parent if str(output.parent) else Path()
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.", suffix=".part")
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in checked.chunks(on_rows):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


COMMANDS: list[click.Command] = [export]
