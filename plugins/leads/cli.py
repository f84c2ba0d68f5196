"""``qiao import``: a spreadsheet into an entity, from the shell.

Progress is drawn on a terminal only, so scripts and logs stay quiet; the
summary is one line, and the rows that were refused or found to be duplicates
go to the report file given with ``--errors``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from qiao.api import Actor, Runtime, Source, pass_runtime
from qiao.plugins.leads.importing import mapping as mappings
from qiao.plugins.leads.importing import report
from qiao.plugins.leads.importing.runner import DEFAULT_BATCH_SIZE, DUPLICATE_POLICIES, Importer


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--entity", default="lead", show_default=True, help="The entity to import into.")
@click.option(
    "--mapping",
    "mapping_arg",
    help="A mapping YAML file, or the name of a saved mapping (default: suggested).",
)
@click.option("--save-mapping", help="Save the mapping used under this name for next time.")
@click.option(
    "--suggest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Only write the suggested mapping to this YAML file, to edit and pass to --mapping.",
)
@click.option("--dry-run", is_flag=True, help="Check every row; write nothing.")
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write refused and duplicate rows to this .csv or .xlsx report.",
)
@click.option(
    "--duplicates",
    type=click.Choice(DUPLICATE_POLICIES),
    default="skip",
    show_default=True,
    help="skip: report duplicate rows and leave them out; keep: store them marked as duplicates.",
)
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=DEFAULT_BATCH_SIZE)
@click.option("--again", is_flag=True, help="Import a file that was imported completely before.")
@pass_runtime
def import_file(
    runtime: Runtime,
    file: Path,
    entity: str,
    mapping_arg: str | None,
    save_mapping: str | None,
    suggest: Path | None,
    dry_run: bool,
    errors_path: Path | None,
    duplicates: str,
    batch_size: int,
    again: bool,
) -> None:
    """Import FILE (.xlsx or .csv, UTF-8 or GBK) into an entity, leads by default.

    Re-running a file whose import was interrupted resumes after its last
    committed batch.
    """
    actor = Actor.system()
    data = file.read_bytes()
    mapping = _mapping(runtime, mapping_arg)
    bar: Any = None
    importer = Importer(runtime, actor, batch_size=batch_size, duplicates=duplicates)
    if suggest is not None:
        _, columns = importer.read(data, file.name, entity, mapping)
        mappings.write_file(suggest, entity, columns)
        click.echo(f"wrote the suggested mapping of {len(columns)} columns to {suggest}")
        return
    table, _ = importer.read(data, file.name, entity, mapping)
    if sys.stderr.isatty():
        bar = click.progressbar(length=len(table.rows), label="importing", file=sys.stderr)
        importer.progress = bar.update
    try:
        outcome = importer.run(data, file.name, entity, mapping, dry_run=dry_run, again=again)
    finally:
        if bar is not None:
            bar.render_finish()
    if save_mapping and not dry_run:
        with runtime.records.transaction(actor, Source.CLI) as ctx:
            mappings.save(runtime.records, ctx, save_mapping, entity, outcome.columns)
    if errors_path is not None:
        report.write(errors_path, outcome.problems, table.columns)
    verb = "would create" if dry_run else "created"
    resumed = (
        f", resumed after batch {outcome.resumed_after_batch}"
        if outcome.resumed_after_batch
        else ""
    )
    click.echo(
        f"{outcome.rows} rows: {verb} {outcome.created}, {outcome.duplicates} duplicates, "
        f"{outcome.errors} refused{resumed}"
        + (f"; report in {errors_path}" if errors_path and outcome.problems else "")
    )


def _mapping(runtime: Runtime, arg: str | None) -> dict[str, Any] | None:
    if arg is None:
        return None
    path = Path(arg)
    if path.suffix.lower() in {".yaml", ".yml", ".json"} or path.exists():
        return mappings.read_file(path)
    with runtime.db.read() as conn:
        return mappings.load_saved(runtime.records, conn, arg)


COMMANDS: list[click.Command] = [import_file]
